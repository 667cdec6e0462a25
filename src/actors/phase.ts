import { fromPromise, type EventObject } from 'xstate';
import type { JobRuntime } from '../services/job-runtime.js';

type PromiseCreator<TOutput, TInput, TEmitted extends EventObject> = Parameters<typeof fromPromise<TOutput, TInput, TEmitted>>[0];

/**
 * A phase's actor: its side effect runs only once the steps before it are durable (the
 * persistence barrier), so a job resumed elsewhere never redoes less than what was recorded,
 * and a node that lost the job never starts another phase of it.
 */
export function phase<TOutput, TInput, TEmitted extends EventObject = EventObject>(
  runtime: Pick<JobRuntime, 'durable'>,
  run: PromiseCreator<TOutput, TInput, TEmitted>,
) {
  return fromPromise<TOutput, TInput, TEmitted>(async (args) => {
    // XState starts an invoked actor before it reports the snapshot that invoked it (Actor.update
    // runs its deferred starts first), so the step that entered this phase is recorded a tick later.
    await Promise.resolve();
    await runtime.durable(args.signal);
    return run(args);
  });
}

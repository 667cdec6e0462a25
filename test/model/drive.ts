import { expect } from 'vitest';
import type { ErrorCode } from '../../src/services/registry/errors.js';
import type { Job } from '../../src/services/store/types.js';
import type { Fault } from '../support/fault-proxy.js';
import { batchIn, errorKind, persistedIn, type Engine, type Held, type Marker, type Steering } from './engine.js';
import type { ModelStep } from './paths.js';

export type ErrorKind = 'transient' | 'permanent' | 'exhausted';

/** How one machine's abstract events are made to happen on real registries. */
export interface Realization {
  /** The request that shows the job is in `phase` (holding it keeps the job there); `item` is the batch. */
  marker(phase: string, item: number): Marker;
  /** What the held request of `phase` gets instead of its answer, and the error code the job must record. */
  failure(phase: string, kind: ErrorKind, longWait: boolean): { fault: Fault; code: ErrorCode };
}

/** The job's error after a failure the step made happen: its code, and how it came about. */
function expectRecorded(job: Job, step: ModelStep, kind: ErrorKind, code: ErrorCode): void {
  expect(job.error?.code, `error recorded after ${step.goal}`).toBe(code);
  if (kind === 'exhausted') expect(job.error?.message).toMatch(/^gave up after 2 attempts: /);
  if (kind === 'permanent') expect(job.error?.transient).toBe(false);
}

/** A running phase whose next step needs the job held there. */
function needsHold(state: string, next: ModelStep | undefined): boolean {
  return state.startsWith('running.') && next !== undefined;
}

/**
 * Executes `steps` of the job machine on the engine: before each step the request of the state
 * it leads to is held, the step's event is made to happen (the job's pool wakes, STOP, a held
 * request goes on, or fails as the event says), and the persisted job must then be in the
 * step's state. In `copying` the held request is the current batch's first: a batch that ends
 * lets it go on (with a refusal, for a batch that gives up).
 */
export async function drive(engine: Engine, steering: Steering, steps: ModelStep[], real: Realization): Promise<Job> {
  let held: Held | undefined;
  let armedForResume: Held | undefined;
  let item = 0;
  let phase = '';
  let job = engine.job;
  const phaseOf = (state: string) => state.slice('running.'.length);
  for (const [i, step] of steps.entries()) {
    const next = steps[i + 1];
    if (step.from.startsWith('running.')) phase = phaseOf(step.from);
    // The batch that ends takes its tag with it; the next batch takes the next tag.
    if (step.event.type === 'xstate.done.actor.*' && step.guard !== 'batchFailed') item += 1;
    const arriving = armedForResume ?? (needsHold(step.to, next) ? steering.hold(real.marker(phaseOf(step.to), item)) : undefined);
    armedForResume = undefined;
    // A retry's wait is short: hold the resumed phase's request before it can start.
    if (step.to === 'retrying' && next?.event.outcome === 'done' && needsHold(next.to, steps[i + 2])) {
      armedForResume = steering.hold(real.marker(phaseOf(next.to), item));
    }
    const kind = errorKind(step);
    const failure = kind ? real.failure(phase, kind, next?.event.outcome === 'stop') : undefined;
    switch (step.event.outcome) {
      case 'start':
        engine.service.pool.wake();
        break;
      case 'stop':
        expect((await engine.service.control.stopJob(engine.job.id)).status, `STOP in ${step.from}`).toBe('stopped');
        break;
      default:
        if (failure && !held) throw new Error(`nothing held to fail in ${step.from}`);
        held?.release(failure?.fault);
    }
    if (arriving) await arriving.arrived;
    if (arriving || !step.to.startsWith('running.')) job = await persistedIn(engine, step.to, phase);
    if (failure) expectRecorded(job, step, kind!, failure.code);
    held = arriving;
  }
  steering.releaseAll();
  return job;
}

/**
 * Executes `steps` of the batch machine on the engine, for a job of one tag: its batch's first
 * request is held before the job starts, then each step as `drive` does, the batch (not the
 * job, which stays in `running.copying`) checked to be in the step's state. The batch's end is
 * the job's: `done` finishes it, `error` fails it with the batch's error.
 */
export async function driveBatch(engine: Engine, steering: Steering, steps: ModelStep[], real: Realization): Promise<Job> {
  const phaseOf = (state: string) => state.slice('running.'.length);
  let held: Held | undefined = steering.hold(real.marker(phaseOf(steps[0]!.from), 0));
  engine.service.pool.wake();
  await held.arrived;
  await batchIn(engine, steps[0]!.from);
  let armedForResume: Held | undefined;
  let phase = '';
  let job = engine.job;
  for (const [i, step] of steps.entries()) {
    const next = steps[i + 1];
    if (step.from.startsWith('running.')) phase = phaseOf(step.from);
    const arriving = armedForResume ?? (needsHold(step.to, next) ? steering.hold(real.marker(phaseOf(step.to), 0)) : undefined);
    armedForResume = undefined;
    if (step.to === 'retrying' && next?.event.outcome === 'done' && needsHold(next.to, steps[i + 2])) {
      armedForResume = steering.hold(real.marker(phaseOf(next.to), 0));
    }
    const kind = errorKind(step);
    const failure = kind ? real.failure(phase, kind, false) : undefined;
    if (failure && !held) throw new Error(`nothing held to fail in ${step.from}`);
    held?.release(failure?.fault);
    if (arriving) await arriving.arrived;
    if (step.to === 'done' || step.to === 'error') {
      job = await persistedIn(engine, step.to === 'done' ? 'finished' : 'error', 'copying');
    } else if (arriving || step.to === 'retrying') {
      const batch = await batchIn(engine, step.to);
      if (step.to === 'retrying') expect(batch.error, `the batch retrying after ${step.goal}`).toMatchObject({ code: failure?.code, transient: true });
      expect((await engine.service.store.jobs.get(engine.job.id))?.status, 'the job runs on while its batch retries').toBe('running');
    }
    if (failure && step.to === 'error') expectRecorded(job, step, kind!, failure.code);
    held = arriving;
  }
  steering.releaseAll();
  return job;
}

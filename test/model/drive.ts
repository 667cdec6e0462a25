import { expect } from 'vitest';
import type { ErrorCode } from '../../src/services/registry/errors.js';
import type { Job } from '../../src/services/store/types.js';
import type { Fault } from '../support/fault-proxy.js';
import { errorKind, persistedIn, type Engine, type Held, type Marker, type Steering } from './engine.js';
import type { ModelStep } from './paths.js';

export type ErrorKind = 'transient' | 'permanent' | 'exhausted';

/** How one machine's abstract events are made to happen on real registries. */
export interface Realization {
  /** The request that shows the job is in `phase` (holding it keeps the job there); `item` is the batch. */
  marker(phase: string, item: number): Marker;
  /** What the held request of `phase` gets instead of its answer, and the error code the job must record. */
  failure(phase: string, kind: ErrorKind, longWait: boolean): { fault: Fault; code: ErrorCode };
}

/** A running phase whose next step needs the job held there (a batch with no tag left sends nothing). */
function needsHold(state: string, next: ModelStep | undefined): boolean {
  return state.startsWith('running.') && next !== undefined && !(next.event.outcome === 'done' && next.guard === 'noTagLeft');
}

/**
 * Executes `steps` on the engine: before each step the request of the state it leads to is
 * held, the step's event is made to happen (the job's pool wakes, STOP, a held request goes
 * on, or fails as the event says), and the persisted job must then be in the step's state.
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
    if (step.from === 'running.pullManifest' && step.event.outcome === 'done' && step.guard !== 'noTagLeft') item += 1;
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
      case 'done':
        held?.release();
        break;
      default:
        if (!held) throw new Error(`nothing held to fail in ${step.from}`);
        held.release(failure!.fault);
    }
    if (arriving) await arriving.arrived;
    if (arriving || !step.to.startsWith('running.')) job = await persistedIn(engine, step.to, phase);
    if (failure) {
      expect(job.error?.code, `error recorded after ${step.goal}`).toBe(failure.code);
      if (kind === 'exhausted') expect(job.error?.message).toMatch(/^gave up after 2 attempts: /);
      if (kind === 'permanent') expect(job.error?.transient).toBe(false);
    }
    held = arriving;
  }
  steering.releaseAll();
  return job;
}

import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeaseLostError } from '../store/errors.js';
import { openSqliteStore } from '../store/sqlite/connect.js';
import type { ClaimedJob, JobStep, JobStore, Store } from '../store/types.js';
import { StepRecorder } from './step-recorder.js';

const logger = pino({ level: 'silent' });
const step = (phase: string, moved = true): JobStep => ({
  status: 'running',
  phase,
  attempt: 0,
  progress: {},
  error: null,
  snapshot: { version: 1, snapshot: { phase } },
  ...(moved ? { transition: { from: 'running', to: `running.${phase}`, event: 'done' } } : {}),
});

let store: Store;
let claimed: ClaimedJob;

beforeEach(async () => {
  store = openSqliteStore(':memory:');
  await store.executions.create({ policyId: null, trigger: 'manual', jobs: [{ operation: 'copy', source: 'a/b', destination: 'c/d', input: {} }] });
  claimed = (await store.jobs.claim('A', 60_000))!;
});

afterEach(() => store.close());

/** The store, with writes of steps that fail while `failing` is above zero (a database away). */
function flaky(jobs: JobStore): JobStore & { failing: number; attempts: number } {
  const wrapped = Object.create(jobs) as JobStore & { failing: number; attempts: number };
  wrapped.failing = 0;
  wrapped.attempts = 0;
  wrapped.saveStep = async (lease, written) => {
    wrapped.attempts += 1;
    if (wrapped.failing > 0) {
      wrapped.failing -= 1;
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    }
    return jobs.saveStep(lease, written);
  };
  return wrapped;
}

describe('StepRecorder', () => {
  it('writes every step in order, and is durable once they are stored', async () => {
    const recorder = new StepRecorder(store.jobs, claimed.lease, { logger, onLost: () => {} });
    for (const phase of ['initialize', 'check', 'pullManifest']) recorder.record(step(phase));
    await recorder.durable();
    expect((await store.jobs.history(claimed.job.id)).map((row) => row.to).slice(-3)).toEqual(['running.initialize', 'running.check', 'running.pullManifest']);
    expect(await store.jobs.get(claimed.job.id)).toMatchObject({ phase: 'pullManifest' });
  });

  it('writes a step recorded just as the writer ends, before it is durable', async () => {
    // The writer ends a few microtasks after its last write is stored: record the next step at
    // each of them in turn, and the barrier must wait for that step too.
    for (let ticks = 0; ticks < 8; ticks++) {
      const jobs = Object.create(store.jobs) as JobStore;
      let recorder: StepRecorder | undefined;
      let recorded: Promise<void> | undefined;
      jobs.saveStep = async (lease, written) => {
        await store.jobs.saveStep(lease, written);
        if (written.phase !== `first-${ticks}`) return;
        recorded = (async () => {
          for (let tick = 0; tick < ticks; tick++) await Promise.resolve();
          recorder!.record(step(`second-${ticks}`));
        })();
      };
      recorder = new StepRecorder(jobs, claimed.lease, { logger, onLost: () => {} });
      recorder.record(step(`first-${ticks}`));
      await recorder.durable();
      await recorded;
      await recorder.durable();
      expect(await store.jobs.get(claimed.job.id), `recorded ${ticks} microtasks after the write`).toMatchObject({ phase: `second-${ticks}` });
    }
  });

  it('keeps trying a step the store refuses for a while, and is durable only once it is written', async () => {
    const jobs = flaky(store.jobs);
    jobs.failing = 2;
    const recorder = new StepRecorder(jobs, claimed.lease, { logger, onLost: () => {} });
    recorder.record(step('initialize'));
    let durable = false;
    const waiting = recorder.durable().then(() => (durable = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(durable).toBe(false);
    await waiting;
    expect(jobs.attempts).toBe(3);
    expect(await store.jobs.get(claimed.job.id)).toMatchObject({ phase: 'initialize' });
  });

  it('stops at a lost lease: tells its owner, writes nothing more, and the barrier says so', async () => {
    await store.jobs.release(claimed.lease);
    const other = (await store.jobs.claim('B', 60_000))!;
    let lost = 0;
    const recorder = new StepRecorder(store.jobs, claimed.lease, { logger, onLost: () => (lost += 1) });
    recorder.record(step('check'));
    await expect(recorder.durable()).rejects.toThrow(LeaseLostError);
    recorder.record(step('pullManifest'));
    await expect(recorder.durable()).rejects.toThrow(LeaseLostError);
    expect(lost).toBe(1);
    expect(recorder.lost).toBe(true);
    expect(await store.jobs.get(claimed.job.id)).toMatchObject({ node: 'B', phase: other.job.phase });
  });
});

import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toPromise, type Snapshot } from 'xstate';
import { jobPhase, jobStatus } from '../src/machines/status.js';
import { createReplication, type JobEvent, type RunOptions } from '../src/services/interpreter.js';
import type { FaultProxy, FaultRule } from './support/fault-proxy.js';
import { currentPhase, environment, replicationInput } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { rawManifest } from './support/skopeo.js';

let fixture: ReplicationFixture;
let built: ReplicationFixture['built'];
let destination: ReplicationFixture['destination'];
let sourceProxy: FaultProxy;
let destinationProxy: FaultProxy;
let release: (() => void) | undefined;

beforeAll(async () => {
  fixture = await replicationFixture(
    {
      one: { layers: [{ size: 100_000, seed: 'restore-1' }, { size: 5_000, seed: 'restore-shared' }] },
      two: {
        platforms: [
          { layers: [{ size: 6_000, seed: 'restore-amd64' }, { size: 5_000, seed: 'restore-shared' }], platform: { os: 'linux', architecture: 'amd64' } },
          { layers: [{ size: 7_000, seed: 'restore-arm64' }], platform: { os: 'linux', architecture: 'arm64' } },
        ],
      },
    },
    'restore/app',
  );
  ({ built, destination, sourceProxy, destinationProxy } = fixture);
});

afterEach(() => {
  release?.();
  fixture.clearFaults();
});

afterAll(() => fixture?.stop());

/** Persists the job as a store would, drops the actor (as a crash would), and restores it from JSON. */
function crashAndRestore(actor: ReturnType<typeof createReplication>, input: ReturnType<typeof replicationInput>, options: RunOptions = {}) {
  const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot())) as Snapshot<unknown>;
  actor.stop();
  return createReplication(input, environment(), { ...options, snapshot: persisted });
}

describe('a job restored from its persisted snapshot', () => {
  const phases: Array<{ phase: string; proxy: () => FaultProxy; rule: Omit<FaultRule, 'fault'> }> = [
    { phase: 'pullManifest', proxy: () => sourceProxy, rule: { path: /\/manifests\// } },
    { phase: 'transferBlob', proxy: () => sourceProxy, rule: { method: 'GET', path: /\/blobs\/sha256:/ } },
    { phase: 'pushManifest', proxy: () => destinationProxy, rule: { method: 'PUT', path: /\/manifests\// } },
  ];
  for (const { phase, proxy, rule } of phases) {
    it(`resumes ${phase} and finishes with the source digests`, async () => {
      // One batch at a time: the held request is the first batch's.
      const input = replicationInput(`${sourceProxy.host}/restore/app`, `${destinationProxy.host}/restored/${phase.toLowerCase()}`, { batchesInFlight: 1 });
      const held = proxy().hold(rule);
      release = () => held.release();
      const actor = createReplication(input, environment());
      actor.start();
      actor.send({ type: 'START' });
      await held.arrived;
      expect(currentPhase(actor.getSnapshot())).toBe(phase);

      const restored = crashAndRestore(actor, input);
      const phasesSeen: string[] = [];
      restored.subscribe((s) => phasesSeen.push(`${jobStatus(s)}/${jobPhase(s) ?? ''}`));
      restored.start();
      expect(currentPhase(restored.getSnapshot())).toBe(phase);
      await toPromise(restored);
      expect(jobStatus(restored.getSnapshot())).toBe('finished');
      expect(phasesSeen).not.toContain('running/initialize');
      for (const tag of ['one', 'two']) {
        expect((await rawManifest({ host: destination.host, repository: `restored/${phase.toLowerCase()}`, tag })).digest).toBe(built[tag]!.digest);
      }
    });
  }

  it('in retrying waits only what is left of the backoff, then resumes the failed phase', async () => {
    sourceProxy.addRule({ path: /\/manifests\//, times: 1, fault: { type: 'status', status: 503, headers: { 'retry-after': '1' } } });
    const input = replicationInput(`${sourceProxy.host}/restore/app`, `${destinationProxy.host}/restored/retrying`, { batchesInFlight: 1 });
    const events: JobEvent[] = [];
    const actor = createReplication(input, environment(), { onEvent: (e) => events.push(e) });
    actor.start();
    actor.send({ type: 'START' });
    for (let i = 0; i < 100 && currentPhase(actor.getSnapshot()) !== 'retrying'; i++) await sleep(10);
    expect(currentPhase(actor.getSnapshot())).toBe('retrying');
    const { retryAt } = events.find((e) => e.type === 'batch.retrying') as { retryAt: number };

    // Down for most of the wait: a restarted (not resumed) wait would end 700 ms late.
    await sleep(700);
    let resumedAt: number | undefined;
    let resumedPhase: string | undefined;
    const restored = crashAndRestore(actor, input, {
      inspect: (event) => {
        if (resumedAt !== undefined || event.type !== '@xstate.snapshot' || event.actorRef === restored) return;
        const phase = jobPhase(event.snapshot as unknown as { value: unknown });
        if (phase) [resumedAt, resumedPhase] = [Date.now(), phase];
      },
    });
    restored.start();
    expect(currentPhase(restored.getSnapshot())).toBe('retrying');
    await toPromise(restored);
    expect(jobStatus(restored.getSnapshot())).toBe('finished');
    expect(resumedPhase).toBe('pullManifest');
    expect(resumedAt!).toBeGreaterThanOrEqual(retryAt);
    expect(resumedAt! - retryAt).toBeLessThan(400);
  });
});

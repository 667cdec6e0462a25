import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toPromise, type Snapshot } from 'xstate';
import { jobPhase, jobStatus } from '../src/machines/status.js';
import { createReplication } from '../src/services/interpreter.js';
import type { FaultProxy, FaultRule } from './support/fault-proxy.js';
import { environment, replicationInput } from './support/ferry.js';
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
function crashAndRestore(actor: ReturnType<typeof createReplication>, input: ReturnType<typeof replicationInput>) {
  const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot())) as Snapshot<unknown>;
  actor.stop();
  return createReplication(input, environment(), { snapshot: persisted });
}

describe('a job restored from its persisted snapshot', () => {
  const phases: Array<{ phase: string; proxy: () => FaultProxy; rule: Omit<FaultRule, 'fault'> }> = [
    { phase: 'pullManifest', proxy: () => sourceProxy, rule: { path: /\/manifests\// } },
    { phase: 'transferBlob', proxy: () => sourceProxy, rule: { method: 'GET', path: /\/blobs\/sha256:/ } },
    { phase: 'pushManifest', proxy: () => destinationProxy, rule: { method: 'PUT', path: /\/manifests\// } },
  ];
  for (const { phase, proxy, rule } of phases) {
    it(`resumes ${phase} and finishes with the source digests`, async () => {
      const input = replicationInput(`${sourceProxy.host}/restore/app`, `${destinationProxy.host}/restored/${phase.toLowerCase()}`);
      const held = proxy().hold(rule);
      release = () => held.release();
      const actor = createReplication(input, environment());
      actor.start();
      actor.send({ type: 'START' });
      await held.arrived;
      expect(jobPhase(actor.getSnapshot())).toBe(phase);

      const restored = crashAndRestore(actor, input);
      const phasesSeen: string[] = [];
      restored.subscribe((s) => phasesSeen.push(`${jobStatus(s)}/${jobPhase(s) ?? ''}`));
      restored.start();
      expect(jobPhase(restored.getSnapshot())).toBe(phase);
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
    const input = replicationInput(`${sourceProxy.host}/restore/app`, `${destinationProxy.host}/restored/retrying`);
    const actor = createReplication(input, environment());
    actor.start();
    actor.send({ type: 'START' });
    for (let i = 0; i < 100 && jobStatus(actor.getSnapshot()) !== 'retrying'; i++) await sleep(10);
    const retryAt = actor.getSnapshot().context.retryAt!;
    expect(jobStatus(actor.getSnapshot())).toBe('retrying');

    // Down for most of the wait: a restarted (not resumed) wait would end 700 ms late.
    await sleep(700);
    const restored = crashAndRestore(actor, input);
    let resumedAt: number | undefined;
    let resumedPhase: string | undefined;
    restored.subscribe((s) => {
      if (resumedAt === undefined && jobStatus(s) === 'running') {
        resumedAt = Date.now();
        resumedPhase = jobPhase(s);
      }
    });
    restored.start();
    expect(jobStatus(restored.getSnapshot())).toBe('retrying');
    await toPromise(restored);
    expect(jobStatus(restored.getSnapshot())).toBe('finished');
    expect(resumedPhase).toBe('pullManifest');
    expect(resumedAt!).toBeGreaterThanOrEqual(retryAt);
    expect(resumedAt! - retryAt).toBeLessThan(400);
  });
});

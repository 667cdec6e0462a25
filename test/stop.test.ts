import { openUploads } from './support/registry.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toPromise } from 'xstate';
import { jobStatus } from '../src/machines/status.js';
import { createReplication, type JobEvent } from '../src/services/interpreter.js';
import type { FaultProxy, FaultRule } from './support/fault-proxy.js';
import { collect, currentPhase, environment, replicationInput, spawnFerry } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { listTags } from './support/skopeo.js';
import { globFilter } from '../src/services/tag-filter.js';

const BIG = 24 * 1024 * 1024;

let fixture: ReplicationFixture;
let built: ReplicationFixture['built'];
let destination: ReplicationFixture['destination'];
let sourceProxy: FaultProxy;
let destinationProxy: FaultProxy;
let release: (() => void) | undefined;

beforeAll(async () => {
  fixture = await replicationFixture(
    { small: { layers: [{ size: 20_000, seed: 'stop-small' }] }, big: { layers: [{ size: BIG, seed: 'stop-big' }] } },
    'stop/app',
  );
  ({ built, destination, sourceProxy, destinationProxy } = fixture);
});

afterEach(() => {
  release?.();
  fixture.clearFaults();
});

afterAll(() => fixture?.stop());

/** Holds the first request matching `rule` until the test ends; resolves when it arrives. */
function hold(proxy: FaultProxy, rule: Omit<FaultRule, 'fault'>): Promise<number> {
  const held = proxy.hold(rule);
  release = () => held.release();
  return held.arrived;
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await sleep(20);
  expect(check(), what).toBe(true);
}

const cases: Array<{ phase: string; side: 'source' | 'destination'; rule: Omit<FaultRule, 'fault'> }> = [
  { phase: 'initialize', side: 'source', rule: { method: 'GET', path: /\/tags\/list/ } },
  { phase: 'check', side: 'destination', rule: { method: 'POST', path: /\/blobs\/uploads\/$/ } },
  { phase: 'pullManifest', side: 'source', rule: { path: /\/manifests\// } },
  { phase: 'transferBlob', side: 'source', rule: { method: 'GET', path: /\/blobs\/sha256:/ } },
  { phase: 'pushManifest', side: 'destination', rule: { method: 'PUT', path: /\/manifests\// } },
];

describe('STOP', () => {
  for (const { phase, side, rule } of cases) {
    it(`in ${phase} aborts the request under way, ends in stopped and pushes no tag`, async () => {
      const proxy = side === 'source' ? sourceProxy : destinationProxy;
      const repository = `stopped/${phase.toLowerCase()}`;
      const held = hold(proxy, rule);
      const actor = createReplication(
        replicationInput(`${sourceProxy.host}/stop/app`, `${destinationProxy.host}/${repository}`, { tagFilter: globFilter(['small']) }),
        environment(),
      );
      actor.start();
      actor.send({ type: 'START' });
      const index = await held;
      expect(currentPhase(actor.getSnapshot())).toBe(phase);

      actor.send({ type: 'STOP' });
      expect(jobStatus(actor.getSnapshot())).toBe('stopped');
      await eventually(() => proxy.requests[index]!.aborted, `held ${rule.method} aborted`);
      expect(await listTags({ host: destination.host, repository })).toEqual([]);
    });
  }

  it('in pending ends in stopped without a request', async () => {
    const before = sourceProxy.requests.length;
    const actor = createReplication(replicationInput(`${sourceProxy.host}/stop/app`, `${destinationProxy.host}/stopped/pending`), environment());
    actor.start();
    actor.send({ type: 'STOP' });
    await toPromise(actor);
    expect(jobStatus(actor.getSnapshot())).toBe('stopped');
    expect(sourceProxy.requests.length).toBe(before);
  });

  it('in retrying (the job, or one of its batches) ends the backoff wait at once', async () => {
    sourceProxy.addRule({ path: /\/manifests\//, fault: { type: 'status', status: 503, headers: { 'retry-after': '600' } } });
    const events: JobEvent[] = [];
    const actor = createReplication(
      replicationInput(`${sourceProxy.host}/stop/app`, `${destinationProxy.host}/stopped/retrying`, { tagFilter: globFilter(['small']) }),
      environment(),
      { onEvent: (e) => events.push(e) },
    );
    actor.start();
    actor.send({ type: 'START' });
    await eventually(() => currentPhase(actor.getSnapshot()) === 'retrying', 'batch retrying');
    const retry = events.find((e) => e.type === 'batch.retrying');
    expect(retry).toMatchObject({ phase: 'pullManifest', attempt: 1 });
    expect((retry as { retryAt: number }).retryAt - Date.now()).toBeGreaterThan(500_000);
    actor.send({ type: 'STOP' });
    await toPromise(actor);
    expect(jobStatus(actor.getSnapshot())).toBe('stopped');
  });

  it('during a large blob cancels both sides of the stream and leaves no blob behind', async () => {
    sourceProxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, fault: { type: 'throttle', bytesPerSecond: 4 * 1024 * 1024 } });
    const events: JobEvent[] = [];
    const actor = createReplication(
      replicationInput(`${sourceProxy.host}/stop/app`, `${destinationProxy.host}/stopped/big`, { tagFilter: globFilter(['big']) }),
      environment(),
      { onEvent: (e) => events.push(e) },
    );
    actor.start();
    actor.send({ type: 'START' });
    await eventually(() => events.some((e) => e.type === 'blob.progress' && e.size === BIG && e.bytes > 1024 * 1024), 'big blob under way');

    const big = events.find((e) => e.type === 'blob.started' && e.size === BIG) as { digest: string };
    const hex = big.digest.slice('sha256:'.length);
    const before = { source: sourceProxy.requests.length, destination: destinationProxy.requests.length };
    const streaming = {
      get: sourceProxy.requests.findIndex((r) => r.method === 'GET' && r.path.includes(hex)),
      put: destinationProxy.requests.findIndex((r) => r.method === 'PUT' && r.path.includes(hex)),
    };
    expect(streaming.get).toBeGreaterThanOrEqual(0);
    expect(streaming.put).toBeGreaterThanOrEqual(0);
    const started = performance.now();
    actor.send({ type: 'STOP' });
    await eventually(
      () => sourceProxy.requests[streaming.get]!.aborted && destinationProxy.requests[streaming.put]!.aborted,
      'source GET and destination upload aborted',
    );
    console.log(`stop during a ${BIG / 1024 / 1024} MiB blob: both transfers aborted ${(performance.now() - started).toFixed(0)} ms after STOP`);
    expect(jobStatus(actor.getSnapshot())).toBe('stopped');
    expect(built.big!.blobs).toContain(big.digest);
    const head = await fetch(`${destination.url}/v2/stopped/big/blobs/${big.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(404);
    await sleep(200);
    expect(sourceProxy.requests.length - before.source, 'no request after the stop').toBe(0);
    expect(destinationProxy.requests.slice(before.destination).every((r) => r.method === 'DELETE')).toBe(true);
    // Every session was asked to be cancelled; distribution 2.8 refuses to cancel one whose PUT
    // was cut mid-body (its state token no longer matches what it holds), and purges it later.
    const requested = destinationProxy.requests.filter((r) => r.path.includes('/stopped/big/blobs/uploads/'));
    const session = (path: string) => /\/uploads\/([0-9a-f-]{36})/.exec(path)?.[1];
    for (const left of await openUploads(destination, 'stopped/big')) {
      expect(requested.some((r) => r.method === 'PUT' && r.aborted && session(r.path) === left), `session ${left} left open but its PUT was not cut`).toBe(true);
      expect(requested.some((r) => r.method === 'DELETE' && session(r.path) === left), `session ${left} not cancelled`).toBe(true);
    }
  });

  it('Ctrl-C on ferry copy stops the job and exits 130', async () => {
    const held = hold(sourceProxy, { method: 'GET', path: /\/blobs\/sha256:/ });
    const child = spawnFerry(['copy', `${sourceProxy.host}/stop/app:small`, `${destinationProxy.host}/stopped/cli:small`]);
    const result = collect(child);
    await held;
    child.kill('SIGINT');
    const { code, stderr } = await result;
    expect(code).toBe(130);
    expect(stderr).toMatch(/^stopped after .*: 0 tags copied, 1 not done$/m);
    expect(await listTags({ host: destination.host, repository: 'stopped/cli' })).toEqual([]);
    // The upload session opened beside the source GET was cancelled before ferry exited.
    expect(await openUploads(destination, 'stopped/cli')).toEqual([]);
  });
});

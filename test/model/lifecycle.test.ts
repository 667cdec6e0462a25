import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FerryService } from '../../src/services/service.js';
import type { StoredSnapshot } from '../../src/services/store/types.js';
import { globFilter } from '../../src/services/tag-filter.js';
import { replicationFixture, type ReplicationFixture } from '../support/fixture.js';
import { intactTags, tagsOf } from './destination.js';
import { databases, ENGINES } from '../support/databases.js';
import { Steering, until } from './engine.js';
import { replicationRealization } from './realize.js';
import { batchModel, modelInput, replicationModel } from './specs.js';

/**
 * The service-level lifecycle of a job around the machine: a crash (the service closed, which
 * halts actors without STOP) and a new service on the same database, in every phase the
 * model has, and in the middle of a retry's wait; a failed job retried.
 */

/** Each phase of the job, and of its batch (the job is in `copying` meanwhile), with the job's phase then. */
const PHASES = [replicationModel, batchModel].flatMap((model) =>
  model.states.filter((s) => s.startsWith('running.')).map((s) => ({ phase: s.slice('running.'.length), job: model === batchModel ? 'copying' : s.slice('running.'.length) })),
);

let fixture: ReplicationFixture;
let dir: string;
let listed: string[];
const services: FerryService[] = [];
const steering = new Steering();

beforeAll(async () => {
  fixture = await replicationFixture({ a: { layers: [{ size: 3_000, seed: 'model-life-a' }] }, b: { layers: [{ size: 3_000, seed: 'model-life-b' }] } }, 'model/app');
  dir = await mkdtemp(join(tmpdir(), 'ferry-model-life-'));
  listed = await tagsOf(fixture.source.host, 'model/app');
});

afterEach(async () => {
  steering.releaseAll();
  await Promise.all(services.splice(0).map((s) => s.close()));
  fixture.clearFaults();
});

afterAll(async () => {
  await fixture?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function start(database: string): Promise<FerryService> {
  const service = await FerryService.start({ database, workers: 1, logger: pino({ level: 'silent' }) });
  services.push(service);
  return service;
}

async function queue(service: FerryService, repository: string): Promise<string> {
  const { sourceProxy, destinationProxy } = fixture;
  for (const url of [sourceProxy.host, destinationProxy.host]) await service.store.registries.create({ name: url, url });
  const input = modelInput(`${sourceProxy.host}/model/app`, `${destinationProxy.host}/${repository}`, { tagFilter: globFilter(listed) });
  const { jobs } = await service.store.executions.create({ policyId: null, trigger: 'manual', jobs: [{ operation: 'copy', source: null, destination: `${destinationProxy.host}/${repository}`, input }] });
  service.pool.wake();
  return jobs[0]!.id;
}

const settled = (service: FerryService, id: string) =>
  until(`job ${id} ended`, async () => {
    const job = await service.store.jobs.get(id);
    return job && ['finished', 'error', 'stopped'].includes(job.status) ? job : undefined;
  });

describe.each(ENGINES)('on %s', (engine) => {
  const stores = databases(engine, () => dir);
  afterAll(() => stores.dropAll());

  describe('a job whose service crashes', () => {
    for (const { phase, job: jobPhase } of PHASES) {
      it(`in ${phase} resumes ${phase} from the persisted snapshot and finishes with whole images`, async () => {
        const database = await stores.fresh(`crash-${phase}`);
        const repository = `model/${engine}-crash-${phase.toLowerCase()}`;
        const real = replicationRealization(fixture, false, listed);
        const first = await start(database);
        const held = steering.hold(real.marker(phase, 0));
        const id = await queue(first, repository);
        await held.arrived;
        expect(await first.store.jobs.get(id)).toMatchObject({ status: 'running', phase: jobPhase });
        await first.close();
        expect(await tagsOf(fixture.destination.host, repository), 'nothing pushed before the crash').toEqual([]);

        const again = steering.hold(real.marker(phase, 0));
        const second = await start(database);
        await again.arrived;
        expect(await second.store.jobs.get(id), `the resumed job is back in ${phase}`).toMatchObject({ status: 'running', phase: jobPhase });
        again.release();
        const job = await settled(second, id);
        expect(job.status).toBe('finished');
        // The takeover row says the second service resumed the job where it was: no step of its own.
        const history = (await second.store.jobs.history(id)).filter((row) => row.event !== 'takeover').map((row) => row.to);
        expect(history.slice(history.indexOf(`running.${jobPhase}`) + 1)).not.toContain('running.initialize');
        expect(await intactTags(fixture.destination.host, repository, fixture.built)).toEqual([...listed].sort());
      });
    }

    // The job retries a failure of check itself; a batch retries its own, the job running meanwhile.
    const waits = [
      { who: 'the job', phase: 'check', rule: { method: 'POST', path: /\/blobs\/uploads\/$/ }, proxy: () => fixture.destinationProxy, status: 'retrying' },
      { who: 'a batch', phase: 'pullManifest', rule: { path: /\/model\/app\/manifests\// }, proxy: () => fixture.sourceProxy, status: 'running' },
    ] as const;
    for (const { who, phase, rule, proxy, status } of waits) {
      it(`in retrying (${who}) waits only what is left of the backoff, then resumes the phase that failed`, async () => {
        const database = await stores.fresh(`crash-retrying-${phase}`);
        const first = await start(database);
        proxy().addRule({ ...rule, times: 1, fault: { type: 'status', status: 503, headers: { 'retry-after': '2' } } });
        const id = await queue(first, `model/${engine}-crash-retrying-${phase.toLowerCase()}`);
        const retryAt = async (service: FerryService): Promise<number | undefined> => {
          const stored = (await service.store.jobs.snapshot(id))?.snapshot as { context: { retryAt?: number }; children: Record<string, { snapshot: { context: { retryAt?: number } } }> } | undefined;
          return who === 'the job' ? stored?.context.retryAt : Object.values(stored?.children ?? {}).map((child) => child.snapshot.context?.retryAt).find((at) => at !== undefined);
        };
        const deadline = await until('a retry stored', () => retryAt(first));
        expect((await first.store.jobs.get(id))?.status).toBe(status);
        await sleep(1_000);
        await first.close();

        const restarted = Date.now();
        const second = await start(database);
        expect((await second.store.jobs.get(id))?.status).toBe(status);
        // The phase resumed sends its request again: when, tells how long the wait was.
        const resumed = await until('the phase resumed', async () => proxy().requests.find((r) => r.at >= restarted && rule.path.test(r.path) && (!('method' in rule) || r.method === rule.method)));
        expect(resumed.at).toBeGreaterThanOrEqual(deadline);
        expect(resumed.at - deadline, 'a restarted wait would end a second late').toBeLessThan(600);
        expect((await settled(second, id)).status).toBe('finished');
      });
    }

    // What a node finds when the job's last step was stored by another definition of the machine
    // (an upgrade between two steps), or cannot be read back as one: it starts the job over.
    const unusable = {
      'stored by another version of the machine': (stored: StoredSnapshot) => ({ version: stored.version + 1, snapshot: stored.snapshot }),
      'naming a state the machine does not have': (stored: StoredSnapshot) => ({ ...stored, snapshot: { ...(stored.snapshot as object), value: { running: 'vanished' } } }),
    };
    for (const [kind, spoil] of Object.entries(unusable)) {
      it(`with a snapshot ${kind} starts over and finishes with whole images`, async () => {
        const database = await stores.fresh('spoiled');
        const repository = `model/${engine}-spoiled-${kind.split(' ')[0]}`;
        const real = replicationRealization(fixture, false, listed);
        const first = await start(database);
        const held = steering.hold(real.marker('pullManifest', 0));
        const id = await queue(first, repository);
        await held.arrived;
        await first.close();
        held.release();

        // A node of another ferry rewrites the last step as it would have stored it, and hands the job back.
        const second = await start(database);
        await second.pool.drain();
        const claimed = await second.store.jobs.claim('an-older-ferry', 60_000);
        expect(claimed?.job.id).toBe(id);
        await second.store.jobs.saveStep(claimed!.lease, { status: 'running', phase: 'pullManifest', attempt: 0, progress: {}, error: null, snapshot: spoil(claimed!.snapshot!) });
        await second.store.jobs.release(claimed!.lease);

        const third = await start(database);
        const job = await settled(third, id);
        expect(job.status).toBe('finished');
        const history = (await third.store.jobs.history(id)).map((row) => `${row.to}/${row.event}`);
        expect(history.slice(history.lastIndexOf('running.pullManifest/takeover'))).toContain('running.initialize/START');
        expect(await intactTags(fixture.destination.host, repository, fixture.built)).toEqual([...listed].sort());
      });
    }
  });

  describe('a failed job', () => {
    it('is retried from the start and finishes; a finished one is not retried', async () => {
      const service = await start(await stores.fresh('retry'));
      // Credentials no longer accepted end the job (a refusal of one manifest would fail that tag alone).
      fixture.destinationProxy.addRule({ method: 'PUT', path: /\/manifests\//, times: 1, fault: { type: 'status', status: 401 } });
      const id = await queue(service, `model/${engine}-retried`);
      const failed = await settled(service, id);
      expect(failed.status).toBe('error');
      expect(failed.error).toMatchObject({ code: 'UNAUTHORIZED', transient: false });
      expect((await service.control.retryJob(id)).status).toBe('pending');
      await until('job requeued and run', async () => (await service.store.jobs.get(id))?.status !== 'error');
      expect((await settled(service, id)).status).toBe('finished');
      expect(await intactTags(fixture.destination.host, `model/${engine}-retried`, fixture.built)).toEqual([...listed].sort());
      await expect(service.control.retryJob(id)).rejects.toThrow(/only a failed or stopped job, or one with failed tags, can be retried/);
    });
  });
});

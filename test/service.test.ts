import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RETRY } from '../src/machines/retry.js';
import type { DeletionInput } from '../src/machines/deletion.js';
import { FerryService } from '../src/services/service.js';
import { openStore } from '../src/services/store/open.js';
import { databases, ENGINES } from './support/databases.js';
import type { Job, JobStatus, PolicyInput } from '../src/services/store/types.js';
import { EVERY_TAG } from '../src/services/tag-filter.js';
import { collect, spawnFerry } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { listTags, rawManifest, seedLayout } from './support/skopeo.js';
import { writeOciLayout } from './support/images.js';
import { DEFAULT_USER, freePort, startRegistry } from './support/registry.js';

const layer = (seed: string, size = 20_000) => ({ size, seed });

describe.each(ENGINES)('on %s', (engine) => {
  let fixture: ReplicationFixture;
  let dir: string;
  const services: FerryService[] = [];

  beforeAll(async () => {
    fixture = await replicationFixture(
      {
        '1.0': { layers: [layer('svc-base', 200_000), layer('svc-1.0')] },
        '1.1': { layers: [layer('svc-base', 200_000), layer('svc-1.1')] },
        '2.0': { layers: [layer('svc-base', 200_000), layer('svc-2.0')] },
      },
      'team/a',
    );
    dir = await mkdtemp(join(tmpdir(), 'ferry-service-'));
    const layout = join(dir, 'layout');
    await writeOciLayout(layout, { '1.0': { layers: [layer('svc-b')] }, 'x': { layers: [layer('svc-c')] } });
    await Promise.all([
      seedLayout(layout, ['1.0'], { host: fixture.source.host, repository: 'team/sub/b' }),
      seedLayout(layout, ['x'], { host: fixture.source.host, repository: 'other/c' }),
    ]);
  });

  afterEach(async () => {
    fixture.clearFaults();
    await Promise.all(services.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    await fixture?.stop();
    await stores.dropAll();
    await rm(dir, { recursive: true, force: true });
  });

  const stores = databases(engine, () => dir);
  async function service(workers = 4): Promise<FerryService> {
    const started = await FerryService.start({ database: await stores.fresh('service'), workers, logger: pino({ level: 'silent' }) });
    services.push(started);
    return started;
  }

  /** Source (through its proxy) and destination (through its proxy) registries, and a policy between them. */
  async function policy(s: FerryService, input: Partial<PolicyInput> = {}) {
    const source = await s.store.registries.create({ name: 'source', url: fixture.sourceProxy.host });
    const destination = await s.store.registries.create({ name: 'destination', url: fixture.destinationProxy.host });
    return s.store.policies.create({ name: 'mirror', sourceRegistryId: source.id, destinationRegistryId: destination.id, ...input });
  }

  async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(25);
    }
  }

  const jobIn = (s: FerryService, id: string, statuses: JobStatus[]) => until(`job ${id} in ${statuses.join('/')}`, async () => {
    const job = await s.store.jobs.get(id);
    return job && statuses.includes(job.status) ? job : undefined;
  });

  describe('a policy run', () => {
    it('replicates exactly the repositories and tags its filters select, under the rewritten namespace', async () => {
      const s = await service();
      const p = await policy(s, {
        repositories: { include: ['team/**'], exclude: [] },
        tags: { include: ['1.*'], exclude: [], syntax: 'glob' },
        rewrite: { namespace: 'mirror', flatten: 1 },
      });
      const { execution, jobs } = await s.scheduler.trigger(p, 'manual');
      expect(jobs.map((j) => j.destination).sort()).toEqual([`${fixture.destinationProxy.host}/mirror/a`, `${fixture.destinationProxy.host}/mirror/sub/b`]);
      await until('execution finished', async () => (await s.store.executions.get(execution.id))?.status === 'finished');

      const host = fixture.destination.host;
      expect((await listTags({ host, repository: 'mirror/a' })).sort()).toEqual(['1.0', '1.1']);
      expect(await listTags({ host, repository: 'mirror/sub/b' })).toEqual(['1.0']);
      expect(await listTags({ host, repository: 'mirror/c' })).toEqual([]);
      for (const tag of ['1.0', '1.1']) {
        expect((await rawManifest({ host, repository: 'mirror/a', tag })).digest).toBe(fixture.built[tag]!.digest);
      }
      const history = await s.store.jobs.history(jobs[0]!.id);
      expect(history.map((t) => t.to)).toEqual(['pending', 'running', 'running.initialize', 'running.check', 'running.copying', 'finished']);
      expect((await s.store.jobs.logs(jobs[0]!.id)).map((l) => l.message)).toEqual(expect.arrayContaining([expect.stringMatching(/^copied 1\.[01]$/)]));
      expect((await s.store.jobs.logs(jobs[0]!.id)).map((l) => l.message)).toContainEqual(expect.stringMatching(/^selected 2 of \d+ tags; left out \d+ by pattern$/));
    });
  });

  describe('the worker pool', () => {
    it('never runs more jobs than workers, and runs all 200 queued', async () => {
      const s = await service(4);
      const source = await s.store.registries.create({ name: 'destination', url: fixture.destination.host });
      let active = 0;
      let most = 0;
      const state = new Map<string, JobStatus>();
      s.feed.subscribe((change) => {
        const before = state.get(change.jobId);
        const busy = (status: JobStatus | undefined) => status === 'running' || status === 'retrying';
        active += Number(busy(change.status)) - Number(busy(before));
        state.set(change.jobId, change.status);
        most = Math.max(most, active);
      });
      const input = (i: number): DeletionInput => ({ destination: { registry: source.url, repository: `nothing/here-${i}` }, tagFilter: EVERY_TAG, concurrency: 1, retry: DEFAULT_RETRY });
      const { execution } = await s.store.executions.create({
        policyId: null,
        trigger: 'manual',
        jobs: Array.from({ length: 200 }, (_, i) => ({ operation: 'delete' as const, source: null, destination: `${source.url}/nothing/here-${i}`, input: input(i) })),
      });
      s.pool.wake();
      const done = await until('200 jobs finished', async () => {
        const e = await s.store.executions.get(execution.id);
        return e?.status === 'finished' ? e : undefined;
      }, 60_000);
      expect(done.jobs.finished).toBe(200);
      expect(most).toBe(4);
    });

    it('stops a pending job at once, without running it', async () => {
      const s = await service(1);
      const p = await policy(s, { repositories: { include: ['team/a', 'other/c'], exclude: [] } });
      const held = fixture.sourceProxy.hold({ method: 'GET', path: /\/tags\/list/ });
      const { jobs } = await s.scheduler.trigger(p, 'manual');
      await held.arrived;
      const pending = (await Promise.all(jobs.map((j) => s.store.jobs.get(j.id)))).find((j) => j?.status === 'pending')!;
      expect((await s.control.stopJob(pending.id)).status).toBe('stopped');
      expect((await s.store.jobs.get(pending.id))?.status).toBe('stopped');
      held.release();
      const history = await s.store.jobs.history(pending.id);
      expect(history.map((t) => t.to)).toEqual(['pending', 'stopped']);
    });

    it('stops a running job mid-blob: the transfer is aborted and no tag is pushed', async () => {
      const s = await service();
      const p = await policy(s, { repositories: { include: ['team/a'], exclude: [] }, tags: { include: ['2.0'], exclude: [], syntax: 'glob' }, rewrite: { namespace: 'stopped', flatten: 0 } });
      const held = fixture.sourceProxy.hold({ method: 'GET', path: /\/blobs\/sha256:/ });
      const { jobs } = await s.scheduler.trigger(p, 'manual');
      const index = await held.arrived;
      const running = await jobIn(s, jobs[0]!.id, ['running']);
      expect(running.phase).toBe('copying');
      expect((await s.control.stopJob(running.id)).status).toBe('stopped');
      expect((await s.store.jobs.get(running.id))?.status).toBe('stopped');
      await until('held blob GET aborted', async () => fixture.sourceProxy.requests[index]!.aborted);
      held.release();
      expect(await listTags({ host: fixture.destination.host, repository: 'stopped/team/a' })).toEqual([]);
    });

    it('stops a job whose batches wait to retry at once, then a retry finishes it from where the destination is', async () => {
      const s = await service();
      const p = await policy(s, { repositories: { include: ['team/a'], exclude: [] }, rewrite: { namespace: 'retried', flatten: 0 } });
      fixture.sourceProxy.addRule({ path: /\/manifests\//, fault: { type: 'status', status: 503, headers: { 'retry-after': '600' } } });
      const { jobs } = await s.scheduler.trigger(p, 'manual');
      const retrying = await jobIn(s, jobs[0]!.id, ['running']);
      const logged = await until('a batch retrying', async () => (await s.store.jobs.logs(retrying.id)).find((line) => line.message.startsWith('retrying pullManifest of batch-')));
      expect(logged.message).toMatch(/\(attempt 1 of \d+\): .*503/);
      await s.control.stopJob(retrying.id);
      expect((await s.store.jobs.get(retrying.id))?.status).toBe('stopped');

      fixture.clearFaults();
      expect((await s.control.retryJob(retrying.id)).status).toBe('pending');
      const finished = await jobIn(s, retrying.id, ['finished', 'error']);
      expect(finished.status).toBe('finished');
      expect((await listTags({ host: fixture.destination.host, repository: 'retried/team/a' })).sort()).toEqual(['1.0', '1.1', '2.0']);
    });

    it('retries a job that failed, and refuses to retry one that has not', async () => {
      const s = await service();
      const p = await policy(s, { repositories: { include: ['team/a'], exclude: [] }, rewrite: { namespace: 'failed', flatten: 0 } });
      fixture.destinationProxy.addRule({ method: 'POST', path: /\/blobs\/uploads\/$/, times: 1, fault: { type: 'status', status: 403, body: '{"errors":[{"code":"DENIED","message":"no push"}]}' } });
      const { jobs } = await s.scheduler.trigger(p, 'manual');
      const failed = await jobIn(s, jobs[0]!.id, ['error', 'finished']);
      expect(failed.status).toBe('error');
      expect(failed.error?.message).toMatch(/403 DENIED: no push/);
      expect((await s.control.retryJob(failed.id)).status).toBe('pending');
      expect((await jobIn(s, failed.id, ['finished', 'error'])).status).toBe('finished');
      await expect(s.control.retryJob(failed.id)).rejects.toThrow(/is finished: only a failed or stopped job, or one with failed tags, can be retried/);
    });
  });

  describe('secrets', () => {
    it('never reach a job\'s log or the service log', async () => {
      const registry = await startRegistry({ auth: 'htpasswd' });
      const lines: string[] = [];
      const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
      const s = await FerryService.start({ database: await stores.fresh('secrets'), workers: 2, logger });
      services.push(s);
      try {
        const source = await s.store.registries.create({ name: 'source', url: fixture.source.host });
        const destination = await s.store.registries.create({ name: 'private', url: registry.host, credentials: DEFAULT_USER });
        const p = await s.store.policies.create({ name: 'to-private', sourceRegistryId: source.id, destinationRegistryId: destination.id, repositories: { include: ['other/c'], exclude: [] } });
        const { execution, jobs } = await s.scheduler.trigger(p, 'manual');
        await until('execution finished', async () => (await s.store.executions.get(execution.id))?.status === 'finished');
        const jobLog = JSON.stringify(await s.store.jobs.logs(jobs[0]!.id));
        expect(jobLog).toContain('copied x');
        const basic = Buffer.from(`${DEFAULT_USER.username}:${DEFAULT_USER.password}`).toString('base64');
        for (const text of [jobLog, lines.join('')]) {
          expect(text).not.toContain(DEFAULT_USER.password);
          expect(text).not.toContain(basic);
        }
        expect(JSON.stringify(await s.store.registries.list())).not.toContain(DEFAULT_USER.password);
      } finally {
        await registry.stop();
      }
    });
  });

  describe('cron triggers', () => {
    it('fire once per slot, even with two services on one database, and do not make up missed slots', async () => {
      const database = await stores.fresh('cron');
      const first = await FerryService.start({ database, workers: 2, logger: pino({ level: 'silent' }) });
      services.push(first);
      const p = await policy(first, { repositories: { include: ['other/c'], exclude: [] }, rewrite: { namespace: 'cron', flatten: 0 }, trigger: { type: 'cron', schedule: '* * * * * *' } });
      await first.scheduler.reload();
      const second = await FerryService.start({ database, workers: 2, logger: pino({ level: 'silent' }) });
      services.push(second);
      await sleep(3_200);
      await first.close();
      await second.close();
      services.splice(0);

      const store = await openStore(database, () => {});
      const fired = (await store.executions.list({ policyId: p.id, limit: 1000 })).items;
      const seconds = fired.map((e) => e.createdAt.slice(0, 19));
      expect(fired.length).toBeGreaterThanOrEqual(2);
      expect(fired.length).toBeLessThanOrEqual(4);
      expect(new Set(seconds).size).toBe(fired.length);

      await sleep(2_000);
      const restarted = await FerryService.start({ database, workers: 2, logger: pino({ level: 'silent' }) });
      services.push(restarted);
      const back = Date.now();
      await sleep(1_500);
      const after = (await store.executions.list({ policyId: p.id, limit: 1000 })).items.filter((e) => !seconds.includes(e.createdAt.slice(0, 19)));
      await store.close();
      expect(after.every((e) => Date.parse(e.createdAt) >= back - 1000)).toBe(true);
      expect(after.length).toBeLessThanOrEqual(2);
    });
  });

  describe('crash recovery', () => {
    it('resumes a job after kill -9 of ferry serve mid-transfer, and finishes it with the source digests', async () => {
      const database = await stores.fresh('crash');
      const store = await openStore(database, () => {});
      const source = await store.registries.create({ name: 'source', url: fixture.sourceProxy.host });
      const destination = await store.registries.create({ name: 'destination', url: fixture.destination.host });
      const p = await store.policies.create({ name: 'crash', sourceRegistryId: source.id, destinationRegistryId: destination.id, repositories: { include: ['team/a'], exclude: [] }, rewrite: { namespace: 'crashed', flatten: 0 } });
      await store.close();

      const held = fixture.sourceProxy.hold({ method: 'GET', path: /\/blobs\/sha256:/ });
      const port = await freePort();
      const first = spawnFerry(['serve', '--db', database, '--port', String(port), '--lease', '2']);
      const firstExit = collect(first);
      await until('service up', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok);
      const trigger = await fetch(`http://127.0.0.1:${port}/api/v1/policies/${p.id}/trigger`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(trigger.status).toBe(201);
      const { jobs } = (await trigger.json()) as { jobs: Job[] };
      await held.arrived;
      first.kill('SIGKILL');
      await firstExit;
      held.release();

      const afterCrash = await openStore(database, () => {});
      const interrupted = await afterCrash.jobs.get(jobs[0]!.id);
      await afterCrash.close();
      expect(interrupted).toMatchObject({ status: 'running', phase: 'copying' });

      const second = spawnFerry(['serve', '--db', database, '--port', String(port), '--lease', '2']);
      const secondExit = collect(second);
      try {
        const reader = await openStore(database, () => {});
        const finished = await until('resumed job finished', async () => {
          const job = await reader.jobs.get(jobs[0]!.id);
          return job && ['finished', 'error'].includes(job.status) ? job : undefined;
        });
        const history = await reader.jobs.history(jobs[0]!.id);
        await reader.close();
        expect(finished.status).toBe('finished');
        expect(history.filter((t) => t.to === 'running.initialize')).toHaveLength(1);
        for (const tag of ['1.0', '1.1', '2.0']) {
          expect((await rawManifest({ host: fixture.destination.host, repository: 'crashed/team/a', tag })).digest).toBe(fixture.built[tag]!.digest);
        }
      } finally {
        second.kill('SIGTERM');
        await secondExit;
      }
    });
  });
});

describe('ferry serve', () => {
  it('refuses to listen off loopback without an API token', async () => {
    const result = await collect(spawnFerry(['serve', '--host', '0.0.0.0', '--db', join(tmpdir(), 'ferry-refused.db')]));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('refusing to listen on 0.0.0.0 without an API token: set --token, --token-file or FERRY_API_TOKEN');
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toPromise } from 'xstate';
import { jobStatus } from '../src/machines/status.js';
import { createReplication, type Environment } from '../src/services/interpreter.js';
import type { BudgetStatus } from '../src/services/registry/limiter.js';
import { FerryService } from '../src/services/service.js';
import { databases, ENGINES } from './support/databases.js';
import { requestsPerWindow, type BudgetFault, type ProxiedRequest } from './support/fault-proxy.js';
import { environment, ferry, replicate, replicationInput } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { listTags } from './support/skopeo.js';
import { until } from './model/engine.js';

/**
 * Several jobs against a source that rations manifest GETs as Docker Hub does (a budget per
 * window, 429 with Retry-After past it, RateLimit headers on GETs and HEADs): what the registry
 * sees is the budget, not a storm of 429s; STOP ends a job waiting for the budget.
 */

const TAGS = ['1', '2', '3', '4', '5', '6'];
const JOBS = 4;
const MANIFESTS = /\/manifests\//;

let fixture: ReplicationFixture;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-budget-'));
  fixture = await replicationFixture(
    Object.fromEntries(TAGS.map((tag) => [tag, { layers: [{ size: 4_096, seed: 'budget-base' }, { size: 2_048, seed: `budget-${tag}` }] }])),
    'budget/app',
  );
});

afterEach(() => fixture.clearFaults());

afterAll(async () => {
  await fixture?.stop();
  await rm(dir, { recursive: true, force: true });
});

const isGet = (request: ProxiedRequest) => request.method === 'GET';

/** `JOBS` jobs at once in one environment, each copying every tag to a repository of its own. */
async function copyAtOnce(env: Environment, prefix: string) {
  return Promise.all(
    Array.from({ length: JOBS }, (_, i) => replicate(replicationInput(`${fixture.sourceProxy.host}/budget/app`, `${fixture.destination.host}/${prefix}/${i}`), env)),
  );
}

describe('a pull budget shared by the jobs of a process', () => {
  it('keeps the manifest GETs reaching the registry within its budget in every window, with no storm of 429s, and copies every tag', async () => {
    const budget: BudgetFault = { type: 'budget', limit: 8, windowSeconds: 2, free: ['HEAD'] };
    fixture.sourceProxy.addRule({ path: MANIFESTS, fault: budget });
    const from = fixture.sourceProxy.requests.length;
    const env = environment();

    const results = await copyAtOnce(env, 'shared');

    expect(results.map((r) => r.status)).toEqual(Array(JOBS).fill('finished'));
    for (let i = 0; i < JOBS; i++) expect((await listTags({ host: fixture.destination.host, repository: `shared/${i}` })).sort()).toEqual(TAGS);
    const requests = fixture.sourceProxy.requests.slice(from);
    const gets = requests.filter((r) => r.method === 'GET' && MANIFESTS.test(r.path));
    expect(gets.filter((r) => r.status === 200)).toHaveLength(JOBS * TAGS.length);
    expect(gets.filter((r) => r.status === 429)).toEqual([]);
    const windows = requestsPerWindow(requests, MANIFESTS, budget.windowSeconds, isGet);
    expect(Math.max(...windows), `manifest GETs per window: ${windows.join(', ')}`).toBeLessThanOrEqual(budget.limit);
    // No job failed a phase over a 429: each waited for the budget instead.
    expect(results.flatMap((r) => r.statuses)).not.toContain('retrying');
    const status = await env.registries.limiter(fixture.sourceProxy.host)!.status();
    expect(status).toMatchObject({ pulls: { limit: budget.limit, windowSeconds: budget.windowSeconds }, waiting: 0 });
  });

  it('stops a job waiting for the budget at once, sending nothing more', async () => {
    fixture.sourceProxy.addRule({ path: MANIFESTS, fault: { type: 'budget', limit: 1, windowSeconds: 600, free: ['HEAD'] } });
    const env = environment();
    const limiter = env.registries.limiter(fixture.sourceProxy.host)!;
    const actor = createReplication(replicationInput(`${fixture.sourceProxy.host}/budget/app`, `${fixture.destination.host}/stopped/app`), env);
    actor.start();
    actor.send({ type: 'START' });
    const spent = async () => {
      const status = await limiter.status();
      return status.waiting > 0 && status.pulls?.remaining === 0;
    };
    for (let i = 0; i < 500 && !(await spent()); i++) await sleep(20);
    expect(await spent()).toBe(true);
    const sent = fixture.sourceProxy.requests.length;

    const stoppedAt = Date.now();
    actor.send({ type: 'STOP' });
    const ended = await Promise.race([toPromise(actor).then(() => 'ended'), sleep(10_000, 'still waiting')]);

    expect(ended).toBe('ended');
    expect(jobStatus(actor.getSnapshot())).toBe('stopped');
    expect((await limiter.status()).waiting).toBe(0);
    await sleep(100);
    // Other batches' requests sent just before the STOP may reach the proxy after it: they were aborted.
    const after = fixture.sourceProxy.requests.slice(sent).filter((r) => !r.aborted || r.at > stoppedAt + 50);
    expect(after.map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });

  it('slows every job down together on 429s from a registry that sends no budget, and finishes them all', async () => {
    const budget: BudgetFault = { type: 'budget', limit: 15, windowSeconds: 1, headers: false };
    fixture.sourceProxy.addRule({ path: /^\/v2\/budget\//, fault: budget });
    const from = fixture.sourceProxy.requests.length;
    const env = environment();

    const results = await copyAtOnce(env, 'aimd');

    expect(results.map((r) => r.status)).toEqual(Array(JOBS).fill('finished'));
    const requests = fixture.sourceProxy.requests.slice(from);
    const refusedPerWindow = requestsPerWindow(requests, /^\/v2\/budget\//, budget.windowSeconds, (r) => r.status === 429);
    // The first window is every job's first burst, before any 429 taught anything; after it, everyone
    // waits out each 429's Retry-After at half the rate: a refusal per window at most, never a phase failed.
    expect(refusedPerWindow[0]).toBeGreaterThan(0);
    expect(Math.max(0, ...refusedPerWindow.slice(1)), `429s per window: ${refusedPerWindow.join(', ')}`).toBeLessThanOrEqual(1);
    expect(results.flatMap((r) => r.statuses)).not.toContain('retrying');
    const status = await env.registries.limiter(fixture.sourceProxy.host)!.status();
    expect(status.rate).not.toBeNull();
  });
});

describe('ferry copy --src-rate', () => {
  it('sends the source no more requests per second than asked', async () => {
    const from = fixture.sourceProxy.requests.length;
    const result = await ferry(['copy', `${fixture.sourceProxy.host}/budget/app`, `${fixture.destination.host}/paced/app`, '--src-rate', '8']);
    expect(result.code, result.stderr).toBe(0);
    const requests = fixture.sourceProxy.requests.slice(from);
    expect(requests.length).toBeGreaterThan(8);
    const perSecond = requestsPerWindow(requests, /./, 1, () => true);
    // The proxy counts arrivals: one request let go in a second may arrive in the next, by its latency.
    expect(Math.max(...perSecond), `requests per second: ${perSecond.join(', ')}`).toBeLessThanOrEqual(8 + 1);
  });

  it('refuses a rate that is not a positive number (exit 2)', async () => {
    const result = await ferry(['copy', 'localhost:5000/x', 'localhost:5001/x', '--dest-rate', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^ferry: --dest-rate 0 is not a positive number of requests per second/);
  });
});

describe.each(ENGINES)('the job service on %s', (engine) => {
  const stores = databases(engine, () => dir);
  const services: FerryService[] = [];

  afterEach(async () => {
    await Promise.all(services.splice(0).map((s) => s.close()));
  });

  afterAll(() => stores.dropAll());

  async function start(database: string): Promise<FerryService> {
    const service = await FerryService.start({ database, workers: JOBS, logger: pino({ level: 'silent' }) });
    services.push(service);
    return service;
  }

  it('keeps the jobs of several policies within the budget, and shows it per registry', async () => {
    const budget: BudgetFault = { type: 'budget', limit: 8, windowSeconds: 2, free: ['HEAD'] };
    fixture.sourceProxy.addRule({ path: MANIFESTS, fault: budget });
    const from = fixture.sourceProxy.requests.length;
    const s = await start(await stores.fresh('budget'));
    const source = await s.settings.addRegistry({ name: 'hub', url: fixture.sourceProxy.host });
    const destination = await s.settings.addRegistry({ name: 'mirror', url: fixture.destination.host });
    const policies = await Promise.all(
      Array.from({ length: JOBS }, (_, i) =>
        s.settings.addPolicy({ name: `p${i}`, sourceRegistryId: source.id, destinationRegistryId: destination.id, repositories: { include: ['budget/app'], exclude: [] }, rewrite: { namespace: `${engine}-${i}`, flatten: 0 } }),
      ),
    );
    const executions = await Promise.all(policies.map((p) => s.settings.trigger(p.id)));
    for (const { execution } of executions) {
      expect((await until(`execution ${execution.id} ended`, async () => {
        const now = await s.store.executions.get(execution.id);
        return now?.finishedAt ? now : undefined;
      }, 60_000)).status).toBe('finished');
    }

    const requests = fixture.sourceProxy.requests.slice(from);
    expect(requests.filter((r) => r.status === 429)).toEqual([]);
    const windows = requestsPerWindow(requests, MANIFESTS, budget.windowSeconds, isGet);
    expect(Math.max(...windows), `manifest GETs per window: ${windows.join(', ')}`).toBeLessThanOrEqual(budget.limit);
    expect(await s.registries.limiter(source.url)!.status()).toMatchObject({ pulls: { limit: budget.limit, windowSeconds: budget.windowSeconds }, pausedUntil: null, waiting: 0 });
  });

  it("gives every node what one learns: the budget it takes from, a 429's pause and slow-down", async () => {
    const database = await stores.fresh('nodes');
    const [a, b] = [await start(database), await start(database)];
    const registry = 'hub.example';
    const [left, right] = [a.registries.limiter(registry)!, b.registries.limiter(registry)!];
    const seen = (status: (s: BudgetStatus) => boolean) => until('node B to adopt it', async () => status(await right.status()));

    const probe = await left.admit(true, undefined, 'GET manifest');
    probe.answered(200, { 'ratelimit-limit': '10;w=3600', 'ratelimit-remaining': '4;w=3600' });
    await seen((status) => status.pulls?.remaining === 4);
    await Promise.all([right.admit(true, undefined, 'GET manifest'), right.admit(true, undefined, 'GET manifest'), right.admit(true, undefined, 'GET manifest')]);
    expect((await left.status()).pulls).toMatchObject({ limit: 10, remaining: 1 });

    const refused = await left.admit(false, undefined, 'HEAD manifest');
    refused.answered(429, { 'retry-after': '30' });
    await seen((status) => status.pausedUntil !== null && status.rate !== null);
    const [mine, theirs] = [await left.status(), await right.status()];
    expect(Date.parse(theirs.pausedUntil!) - Date.now()).toBeGreaterThan(20_000);
    // Half the rate A sent at (two requests within a second at most), grown a little by the time B reads it.
    expect(mine.rate).toBeLessThanOrEqual(1);
    expect(theirs.rate).toBeCloseTo(mine.rate!, 1);
  });
});

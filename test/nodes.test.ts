import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { openStore } from '../src/services/store/open.js';
import type { Execution, Job, Policy, PolicyInput, Registry, Transition } from '../src/services/store/types.js';
import type { BudgetStatus } from '../src/services/registry/limiter.js';
import { requestsPerWindow, startFaultProxy, type BudgetFault, type HeldRequest } from './support/fault-proxy.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { OCI_MEDIA_TYPES, writeOciLayout, type BuiltTag } from './support/images.js';
import { nodeOutputs, openEvents, startNode, startNodes, type FerryNode } from './support/nodes.js';
import { createTestDatabase, startPrivatePostgres, type PrivatePostgres, type TestDatabase } from './support/postgres.js';
import { seedTag } from './support/skopeo.js';

/**
 * Several `ferry serve` processes on one PostgreSQL database, with real registries between
 * fault proxies: the jobs table as the queue, leases and fences, takeovers, STOP across
 * nodes, drains, the change feed and the nodes list, as an operator would see them.
 */

type JobDetail = Job & { history: Transition[] };

const MANY = 50;
/** Repositories whose jobs a test holds mid-transfer: each has blobs of its own, so no node can mount them from another test's copy. */
const HELD = ['kill', 'sigstop', 'stop', 'feed', 'drain'] as const;

let fixture: ReplicationFixture;
let layouts: string;
let manyImage: BuiltTag;
const held: Record<string, BuiltTag> = {};
/** The nodes of the tests that run now, whose logs a failure prints. */
let cluster: FerryNode[] = [];

beforeAll(async () => {
  fixture = await replicationFixture({ '1.0': { layers: [{ size: 4_096, seed: 'nodes-team' }] } }, 'team/a');
  layouts = await mkdtemp(join(tmpdir(), 'ferry-nodes-'));
  const [many, heldBuilt] = await Promise.all([
    writeOciLayout(join(layouts, 'many'), { v1: { layers: [{ size: 2_048, seed: 'nodes-many' }] } }),
    writeOciLayout(join(layouts, 'held'), Object.fromEntries(HELD.map((name) => [name, { layers: [{ size: 150_000, seed: `nodes-held-${name}` }, { size: 1_000, seed: `nodes-held-${name}-top` }] }]))),
  ]);
  manyImage = many.v1!;
  Object.assign(held, heldBuilt);
  const host = fixture.source.host;
  const seeds = [
    ...Array.from({ length: MANY }, (_, i) => () => seedTag(join(layouts, 'many'), 'v1', { host, repository: `many/r${String(i).padStart(2, '0')}` })),
    ...HELD.map((name) => () => seedTag(join(layouts, 'held'), name, { host, repository: `held/${name}`, tag: '1.0' })),
  ];
  await Promise.all(Array.from({ length: 6 }, async () => {
    for (let seed = seeds.shift(); seed; seed = seeds.shift()) await seed();
  }));
});

afterEach(async () => {
  fixture.clearFaults();
});

afterAll(async () => {
  await fixture?.stop();
  await rm(layouts, { recursive: true, force: true });
});

/** The nodes' logs go with a failure: the last NODE_LOG_LINES lines of each (40 by default). */
function reportNodesOnFailure(): void {
  onTestFailed(() => {
    console.log(nodeOutputs(cluster, Number(process.env.NODE_LOG_LINES ?? 40)));
  });
}

async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let failure: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      // A node that is restarting, or a database that is: look again.
      failure = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${failure ? ` (last error: ${(failure as Error).message})` : ''}`);
    await sleep(50);
  }
}

async function ok<T>(node: FerryNode, method: string, path: string, body?: unknown): Promise<T> {
  const response = await node.api<T>(method, path, body);
  if (response.status >= 300) throw new Error(`${method} ${path} on ${node.name}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

async function registries(node: FerryNode): Promise<{ source: Registry; destination: Registry }> {
  const { items: existing } = await ok<{ items: Registry[] }>(node, 'GET', '/registries');
  const find = async (name: string, url: string) => existing.find((r) => r.name === name) ?? ok<Registry>(node, 'POST', '/registries', { name, url });
  return { source: await find('source', fixture.sourceProxy.host), destination: await find('destination', fixture.destinationProxy.host) };
}

/** A policy from the source to the destination (both through their proxies), under a namespace of its name. */
async function policy(node: FerryNode, name: string, repositories: string[], extra: Partial<PolicyInput> = {}): Promise<Policy> {
  const { source, destination } = await registries(node);
  return ok<Policy>(node, 'POST', '/policies', {
    name,
    sourceRegistryId: source.id,
    destinationRegistryId: destination.id,
    repositories: { include: repositories, exclude: [] },
    rewrite: { namespace: name, flatten: 0 },
    ...extra,
  });
}

const trigger = (node: FerryNode, p: Policy) => ok<{ execution: Execution; jobs: Job[] }>(node, 'POST', `/policies/${p.id}/trigger`);
const jobDetail = (node: FerryNode, id: string) => ok<JobDetail>(node, 'GET', `/jobs/${id}`);

const jobsOf = async (node: FerryNode, execution: Execution) => (await ok<{ items: Job[] }>(node, 'GET', `/jobs?executionId=${execution.id}`)).items;

/** The execution's jobs once it has finished; a timeout names the jobs still going, with their histories. */
async function finished(node: FerryNode, execution: Execution, timeoutMs = 40_000): Promise<Job[]> {
  try {
    await until(`execution ${execution.id} finished`, async () => (await ok<Execution>(node, 'GET', `/executions/${execution.id}`)).finishedAt !== null, timeoutMs);
  } catch (error) {
    const going = (await jobsOf(node, execution)).filter((job) => job.finishedAt === null);
    const details = await Promise.all(going.map((job) => jobDetail(node, job.id)));
    throw new Error(`${(error as Error).message}; still going:\n${details.map((job) => `${job.id} ${job.status} ${job.phase} on ${job.node}: ${job.history.map((t) => `${t.to}/${t.event}/${t.node}@${t.at}`).join(', ')}`).join('\n')}`, { cause: error });
  }
  return jobsOf(node, execution);
}

/** The job's history once a row matching `row` is in it. */
const historyWith = (node: FerryNode, id: string, what: string, row: (t: Transition) => boolean, timeoutMs?: number) =>
  until(what, async () => {
    const job = await jobDetail(node, id);
    return job.history.some(row) ? job : undefined;
  }, timeoutMs);

/** The digest of the manifest `repository:tag` has at the destination (read past its proxy). */
async function destinationDigest(repository: string, tag: string): Promise<string | undefined> {
  const response = await fetch(`${fixture.destination.url}/v2/${repository}/manifests/${tag}`, {
    headers: { accept: [OCI_MEDIA_TYPES.manifest, OCI_MEDIA_TYPES.index].join(', ') },
  });
  if (response.status === 404) return undefined;
  return `sha256:${createHash('sha256').update(Buffer.from(await response.arrayBuffer())).digest('hex')}`;
}

/**
 * Who wrote the job's history: the node of its rows changes only where a node claimed it or
 * took it over, and between two such rows only the node that claimed it wrote steps.
 */
function ownershipProblems(job: JobDetail): string[] {
  let holder: string | null = null;
  const problems: string[] = [];
  for (const row of job.history) {
    if (row.event === 'claimed' || row.event === 'takeover') {
      if (row.node === null) problems.push(`job ${job.id}: row ${row.seq} (${row.event}) names no node`);
      holder = row.node;
    } else if (row.node !== null && row.node !== holder) {
      problems.push(`job ${job.id}: row ${row.seq} (${row.from} -> ${row.to} on ${row.event}) written by ${row.node} while ${holder ?? 'no node'} held it`);
    }
  }
  return problems;
}

const holderOf = (nodes: FerryNode[], job: Job) => {
  const holder = nodes.find((node) => node.id === job.node);
  if (!holder) throw new Error(`job ${job.id} is held by ${job.node}, none of ${nodes.map((n) => n.id).join(', ')}`);
  return holder;
};

interface HeldJob {
  execution: Execution;
  id: string;
  /** The node that runs it. */
  holder: FerryNode;
  /** Its first blob GET, held at the source proxy: the job's batch waits in transferBlob until it is released. */
  hold: HeldRequest;
  /** That request's index in the source proxy's records. */
  index: number;
}

/** A policy `name` over `held/<repository>` run through the first node; its one job waits mid-transfer. */
async function jobMidTransfer(name: string, repository: (typeof HELD)[number]): Promise<HeldJob> {
  const hold = fixture.sourceProxy.hold({ method: 'GET', path: new RegExp(`^/v2/held/${repository}/blobs/sha256:`) });
  const { execution, jobs } = await trigger(cluster[0]!, await policy(cluster[0]!, name, [`held/${repository}`]));
  const id = jobs[0]!.id;
  const index = await hold.arrived;
  const transferring = await until('the job transferring', async () => {
    const job = await jobDetail(cluster[0]!, id);
    return job.phase === 'copying' ? job : undefined;
  });
  return { execution, id, holder: holderOf(cluster, transferring), hold, index };
}

/** Manifest PUTs by tag that reached the destination proxy for `repository`. */
function manifestPuts(repository: string, tag: string): number {
  return fixture.destinationProxy.requests.filter((r) => r.method === 'PUT' && r.path === `/v2/${repository}/manifests/${tag}`).length;
}

describe('three nodes on one database', () => {
  let sharedDb: TestDatabase;

  beforeAll(async () => {
    sharedDb = await createTestDatabase('nodes');
    cluster = await startNodes(3, { db: sharedDb.url, leaseSeconds: 3, workers: 2 });
  });

  afterEach(async () => {
    // A node a test killed or stopped is replaced, so that every test finds three.
    for (const [i, node] of cluster.entries()) {
      if (!node.alive()) cluster[i] = await startNode(`${node.name}'`, { db: sharedDb.url, leaseSeconds: 3, workers: 2 });
    }
  });

  afterAll(async () => {
    await Promise.all(cluster.map((node) => node.stop()));
    cluster = [];
    await sharedDb?.drop();
  });

  it('lists all three nodes on any node, with the jobs each holds', async () => {
    reportNodesOnFailure();
    // Six jobs wait at their first request: two on each node (two workers each).
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    fixture.sourceProxy.addRule({ method: 'GET', path: /^\/v2\/many\/r0[0-5]\/tags\/list/, fault: { type: 'hold', release: released } });
    const p = await policy(cluster[0]!, 'listed', ['many/r0[0-5]']);
    const { execution, jobs } = await trigger(cluster[0]!, p);
    expect(jobs).toHaveLength(6);
    try {
      await until('six jobs running', async () => (await ok<{ total: number }>(cluster[0]!, 'GET', `/jobs?executionId=${execution.id}&status=running`)).total === 6);
      for (const node of cluster) {
        const listed = await ok<{ self: string; items: Array<{ id: string; jobsHeld: number; draining: boolean; pid: number }> }>(node, 'GET', '/nodes');
        expect(listed.self).toBe(node.id);
        expect(listed.items.map((n) => n.id).sort()).toEqual(cluster.map((n) => n.id).sort());
        for (const item of listed.items) {
          expect(item).toMatchObject({ jobsHeld: 2, draining: false, pid: cluster.find((n) => n.id === item.id)!.pid });
        }
      }
    } finally {
      release();
    }
    expect((await finished(cluster[0]!, execution)).map((j) => j.status)).toEqual(Array(6).fill('finished'));
  });

  it('runs 50 jobs across the nodes, each held by one node at a time, with the source digests', async () => {
    reportNodesOnFailure();
    // Slow enough that every node gets to claim some.
    fixture.sourceProxy.addRule({ method: 'GET', path: /^\/v2\/many\/r\d+\/manifests\//, fault: { type: 'delay', ms: 150 } });
    const since = Date.now();
    const p = await policy(cluster[1]!, 'fifty', ['many/*']);
    const { execution, jobs } = await trigger(cluster[1]!, p);
    expect(jobs).toHaveLength(MANY);
    const done = await finished(cluster[1]!, execution);
    expect(done.filter((j) => j.status !== 'finished')).toEqual([]);

    const details = await Promise.all(done.map((job) => jobDetail(cluster[2]!, job.id)));
    expect(details.flatMap(ownershipProblems)).toEqual([]);
    const claimers = new Set(details.flatMap((job) => job.history.filter((t) => t.event === 'claimed').map((t) => t.node)));
    expect(details.every((job) => job.history.filter((t) => t.event === 'claimed').length === 1)).toBe(true);
    expect(claimers.size).toBeGreaterThan(1);
    for (const node of claimers) expect(cluster.map((n) => n.id)).toContain(node);

    const digests = await Promise.all(done.map((job) => destinationDigest(job.destination.split('/').slice(1).join('/'), 'v1')));
    expect(digests).toEqual(Array(MANY).fill(manyImage.digest));
    // No node died: none lost a job, none had anything to warn about.
    expect(cluster.flatMap((node) => node.logs().filter((r) => r.level >= 40 && Number(r.time) >= since).map((r) => `${node.name}: ${r.msg}`))).toEqual([]);
  });

  it('keeps the manifest GETs of jobs on every node within the budget of a source that rations them, and shows it on each', async () => {
    reportNodesOnFailure();
    const rationed = await startFaultProxy(fixture.source.host);
    try {
      const budget: BudgetFault = { type: 'budget', limit: 3, windowSeconds: 2, free: ['HEAD'] };
      rationed.addRule({ path: /\/manifests\//, fault: budget });
      const source = await ok<Registry>(cluster[0]!, 'POST', '/registries', { name: 'rationed', url: rationed.host });
      const { destination } = await registries(cluster[0]!);
      const p = await ok<Policy>(cluster[0]!, 'POST', '/policies', {
        name: 'rationed',
        sourceRegistryId: source.id,
        destinationRegistryId: destination.id,
        repositories: { include: ['many/r1?'], exclude: [] },
        rewrite: { namespace: 'rationed', flatten: 0 },
      });
      const { execution, jobs } = await trigger(cluster[0]!, p);
      expect(jobs).toHaveLength(10);
      const done = await finished(cluster[0]!, execution, 60_000);
      expect(done.filter((j) => j.status !== 'finished')).toEqual([]);
      expect(new Set(done.map((j) => j.node)).size).toBeGreaterThan(1);

      const gets = rationed.requests.filter((r) => r.method === 'GET' && /\/manifests\//.test(r.path));
      expect(gets.filter((r) => r.status === 429)).toEqual([]);
      const windows = requestsPerWindow(rationed.requests, /\/manifests\//, budget.windowSeconds, (r) => r.method === 'GET');
      console.log(`10 jobs on three nodes, a budget of ${budget.limit} manifest GETs per ${budget.windowSeconds} s: ${windows.join(', ')} per window`);
      expect(Math.max(...windows)).toBeLessThanOrEqual(budget.limit);
      for (const node of cluster) {
        expect(await ok<BudgetStatus>(node, 'GET', `/registries/${source.id}/budget`)).toMatchObject({ pulls: { limit: budget.limit, windowSeconds: budget.windowSeconds }, waiting: 0 });
      }
    } finally {
      await rationed.stop();
    }
  });

  it('shows on every node the changes of a job running on another, and replays what a client missed', async () => {
    reportNodesOnFailure();
    const streams = await Promise.all(cluster.map((node) => openEvents(node)));
    try {
      const { execution, id, holder, hold } = await jobMidTransfer('feed', 'feed');
      const [watching, witnessing] = cluster.filter((node) => node !== holder);
      const [watcher, witness] = [streams[cluster.indexOf(watching!)], streams[cluster.indexOf(witnessing!)]];
      const ofJob = (event: { id?: number; data: unknown }) => event.id !== undefined && (event.data as { jobId: string }).jobId === id;
      await watcher!.next((e) => ofJob(e) && (e.data as Job).phase === 'copying');
      const seen = watcher!.events.filter(ofJob).map((e) => e.data as Job);
      expect(seen.map((c) => c.status === 'pending' ? 'pending' : `${c.status}.${c.phase}`)).toEqual(expect.arrayContaining(['pending', 'running.initialize', 'running.copying']));
      expect(seen.filter((c) => c.status === 'running').every((c) => c.node === holder.id)).toBe(true);

      // The watcher goes away; the job finishes meanwhile; back, it gets what it missed, once.
      watcher!.close();
      const lastId = watcher!.events.filter((e) => e.id !== undefined).at(-1)!.id!;
      hold.release();
      await finished(cluster[0]!, execution);
      const end = await witness!.next((e) => ofJob(e) && (e.data as Job).status === 'finished');
      const back = await openEvents(watching!, lastId);
      streams.push(back);
      await back.next((e) => e.id === end.id);
      const replayed = back.events.filter((e) => e.id !== undefined && e.id <= end.id!);
      const missed = witness!.events.filter((e) => e.id !== undefined && e.id > lastId && e.id <= end.id!);
      expect(replayed.map((e) => e.id)).toEqual(missed.map((e) => e.id));
      expect(replayed.map((e) => e.data)).toEqual(missed.map((e) => e.data));
      expect(replayed.filter(ofJob).map((e) => (e.data as Job).status)).toContain('finished');
      expect((end.data as Job).node).toBe(holder.id);
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  it('stops through one node a job running on another: the answer is the stopped job, and the transfer is aborted', async () => {
    reportNodesOnFailure();
    const { id, holder, hold, index } = await jobMidTransfer('stopped', 'stop');
    try {
      const asked = cluster.find((node) => node !== holder)!;
      const started = performance.now();
      const answer = await asked.api<Job>('POST', `/jobs/${id}/stop`);
      const latency = performance.now() - started;
      console.log(`STOP through ${asked.name} of a job running on ${holder.name}: answered ${answer.body.status} after ${latency.toFixed(0)} ms`);
      expect(answer.status).toBe(200);
      expect(answer.body.status).toBe('stopped');
      expect(latency).toBeLessThan(1_000);
      await until('the held blob GET aborted', async () => fixture.sourceProxy.requests[index]!.aborted);
      const job = await jobDetail(asked, id);
      expect(job.history.at(-1)).toMatchObject({ to: 'stopped', event: 'STOP', node: holder.id });
      expect(ownershipProblems(job)).toEqual([]);
    } finally {
      hold.release();
    }
    expect(await destinationDigest('stopped/held/stop', '1.0')).toBeUndefined();
  });

  it('fires a cron schedule once per slot, whichever node fires first', async () => {
    reportNodesOnFailure();
    const p = await policy(cluster[0]!, 'cron', ['nothing/here'], { trigger: { type: 'cron', schedule: '* * * * * *' } });
    await sleep(5_000);
    await ok(cluster[1]!, 'PATCH', `/policies/${p.id}`, { enabled: false });
    await sleep(1_000);
    const { items } = await ok<{ items: Execution[] }>(cluster[2]!, 'GET', `/executions?policyId=${p.id}&limit=100`);
    const seconds = items.map((e) => e.createdAt.slice(0, 19)).sort();
    console.log(`cron * * * * * * on three nodes for 5 s: ${items.length} executions (${seconds.join(', ')})`);
    expect(new Set(seconds).size).toBe(items.length);
    expect(items.length).toBeGreaterThanOrEqual(3);
    expect(items.length).toBeLessThanOrEqual(7);
    // Each node logs the runs it queued: together, one per execution.
    const queued = cluster.flatMap((node) => node.logs().filter((r) => typeof r.msg === 'string' && r.msg.startsWith('policy cron: cron run queued')));
    expect(queued).toHaveLength(items.length);
  });

  it('after kill -9 of the node mid-transfer, another node takes the job over and finishes it', async () => {
    reportNodesOnFailure();
    const { execution, id, holder: victim, hold } = await jobMidTransfer('killed', 'kill');
    const survivor = cluster.find((node) => node !== victim)!;
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    await victim.exited;
    hold.release();

    const taken = await historyWith(survivor, id, 'a takeover', (t) => t.event === 'takeover');
    const takeover = taken.history.find((t) => t.event === 'takeover')!;
    console.log(`kill -9 of ${victim.name} mid-transfer: taken over after ${Date.parse(takeover.at) - killedAt} ms (lease 3 s)`);
    expect(takeover).toMatchObject({ from: 'running.copying', to: 'running.copying' });
    expect(takeover.node).not.toBe(victim.id);
    expect(cluster.map((node) => node.id)).toContain(takeover.node);

    const [done] = await finished(survivor, execution);
    expect(done).toMatchObject({ status: 'finished', node: takeover.node });
    const job = await jobDetail(survivor, id);
    expect(ownershipProblems(job)).toEqual([]);
    // Resumed from its last step, not started over.
    expect(job.history.filter((t) => t.to === 'running.initialize')).toHaveLength(1);
    expect(await destinationDigest('killed/held/kill', '1.0')).toBe(held.kill!.digest);
  });

  it('refuses the writes of a node that was frozen past its lease, which then stops its copy of the job', async () => {
    reportNodesOnFailure();
    const { execution, id, holder: frozen, hold } = await jobMidTransfer('frozen', 'sigstop');
    const other = cluster.find((node) => node !== frozen)!;
    frozen.kill('SIGSTOP');
    let takeover: Transition;
    try {
      const taken = await historyWith(other, id, 'a takeover', (t) => t.event === 'takeover');
      takeover = taken.history.find((t) => t.event === 'takeover')!;
      expect(takeover.node).not.toBe(frozen.id);
      // Its transfer goes on where it was held, and the node wakes up.
      hold.release();
    } finally {
      frozen.kill('SIGCONT');
    }

    const [done] = await finished(other, execution);
    expect(done).toMatchObject({ status: 'finished', node: takeover.node });
    await until(`${frozen.name} stopping its copy of the job`, async () => frozen.logs().some((r) => r.jobId === id && /stopping (it )?here/.test(r.msg)), 10_000);
    const job = await jobDetail(other, id);
    expect(job.history.filter((t) => t.seq > takeover.seq && t.node === frozen.id)).toEqual([]);
    expect(ownershipProblems(job)).toEqual([]);
    expect(manifestPuts('frozen/held/sigstop', '1.0')).toBe(1);
    expect(await destinationDigest('frozen/held/sigstop', '1.0')).toBe(held.sigstop!.digest);
    // It goes on serving.
    expect((await frozen.api('GET', '/nodes')).status).toBe(200);
  });
});

describe('a node that drains', () => {
  it('hands its job back on SIGTERM, and another node resumes it long before the lease would have run out', async () => {
    const db = await createTestDatabase('drain');
    cluster = await startNodes(2, { db: db.url, leaseSeconds: 60, workers: 2 });
    reportNodesOnFailure();
    let hold: HeldRequest | undefined;
    try {
      const mid = await jobMidTransfer('drained', 'drain');
      const { execution, id, holder: leaving } = mid;
      hold = mid.hold;
      const staying = cluster.find((node) => node !== leaving)!;
      const termAt = Date.now();
      leaving.kill('SIGTERM');
      const taken = await historyWith(staying, id, `a takeover by ${staying.name}`, (t) => t.event === 'takeover' && t.node === staying.id, 20_000);
      const takeover = taken.history.find((t) => t.event === 'takeover')!;
      const after = Date.parse(takeover.at) - termAt;
      console.log(`SIGTERM of ${leaving.name} mid-transfer: resumed on ${staying.name} after ${after} ms (lease 60 s)`);
      expect(takeover).toMatchObject({ from: 'running.copying', to: 'running.copying' });
      expect(after).toBeLessThan(10_000);
      await until(`${leaving.name} exited`, async () => !leaving.alive(), 15_000);
      expect(await leaving.exited).toEqual({ code: 0, signal: null });
      hold.release();

      const [done] = await finished(staying, execution);
      expect(done).toMatchObject({ status: 'finished', node: staying.id });
      const job = await jobDetail(staying, id);
      expect(ownershipProblems(job)).toEqual([]);
      expect(job.history.filter((t) => t.seq > takeover.seq && t.node === leaving.id)).toEqual([]);
      expect(await destinationDigest('drained/held/drain', '1.0')).toBe(held.drain!.digest);
    } finally {
      hold?.release();
      await Promise.all(cluster.map((node) => node.stop()));
      await db.drop();
    }
  });
});

describe('nodes starting together', () => {
  it('apply the same ferry.yaml once: each registry and policy stored once, no errors', async () => {
    const db = await createTestDatabase('config');
    const file = join(layouts, 'ferry.yaml');
    await writeFile(
      file,
      [
        'registries:',
        `  - { name: upstream, url: "${fixture.sourceProxy.host}" }`,
        `  - { name: mirror, url: "${fixture.destinationProxy.host}" }`,
        'policies:',
        '  - { name: team, source: upstream, destination: mirror, repositories: { include: ["team/**"] } }',
        '  - { name: nightly, source: upstream, destination: mirror, trigger: { type: cron, schedule: "0 3 * * *" } }',
        '',
      ].join('\n'),
    );
    // Both nodes read the registries at the same moment: the schema is made first, and the
    // registries table held locked until both wait for it.
    await (await openStore(db.url, () => {})).close();
    const [gate, watch] = [new pg.Client({ connectionString: db.url }), new pg.Client({ connectionString: db.url })];
    await Promise.all([gate.connect(), watch.connect()]);
    let starting: Promise<FerryNode[]> | undefined;
    try {
      await gate.query('BEGIN');
      await gate.query('LOCK TABLE registries IN ACCESS EXCLUSIVE MODE');
      starting = startNodes(2, { db: db.url, config: file });
      // Outside the transaction: activity statistics are read once per transaction.
      const waiting = () => watch.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%registries%'");
      await until('both nodes waiting to apply ferry.yaml', async () => (await waiting()).rows[0]!.n >= 2);
      await gate.query('COMMIT');
      cluster = await starting;
      reportNodesOnFailure();
      for (const node of cluster) {
        expect((await ok<{ items: Registry[] }>(node, 'GET', '/registries')).items.map((r) => r.name).sort()).toEqual(['mirror', 'upstream']);
        expect((await ok<{ items: Policy[] }>(node, 'GET', '/policies')).items.map((r) => r.name).sort()).toEqual(['nightly', 'team']);
        expect(node.logs().filter((r) => r.level >= 40)).toEqual([]);
        expect(node.logs().map((r) => r.msg)).toContain(`${file}: 2 registries and 2 policies applied`);
      }
    } finally {
      await Promise.all([gate.end(), watch.end()]);
      const started = await starting?.catch(() => []);
      await Promise.all((started ?? []).map((node) => node.stop()));
      await db.drop();
    }
  });
});

describe('PostgreSQL going away', () => {
  let server: PrivatePostgres;
  let db: TestDatabase;

  beforeAll(async () => {
    server = await startPrivatePostgres();
    db = await createTestDatabase('restart', server.adminUrl);
    cluster = await startNodes(3, { db: db.url, leaseSeconds: 3, workers: 2 });
  });

  afterAll(async () => {
    await Promise.all(cluster.map((node) => node.stop()));
    await db?.drop().catch(() => {});
    await server?.remove();
  });

  /** Ten jobs, each a second in its batch's pullManifest, six of them running now. */
  async function runningJobs(name: string, repositories: string): Promise<Execution> {
    reportNodesOnFailure();
    onTestFailed(async () => console.log(`--- PostgreSQL ---\n${(await server.log()).split('\n').slice(-30).join('\n')}`));
    fixture.sourceProxy.addRule({ method: 'GET', path: new RegExp(`^/v2/${repositories}/manifests/`), fault: { type: 'delay', ms: 1_000 } });
    const p = await policy(cluster[0]!, name, [repositories]);
    const { execution, jobs } = await trigger(cluster[0]!, p);
    expect(jobs).toHaveLength(10);
    await until('six jobs running', async () => (await ok<{ total: number }>(cluster[0]!, 'GET', `/jobs?executionId=${execution.id}&status=running`)).total === 6);
    return execution;
  }

  /** Every job finished, none failed, each held by one node at a time, the source digests at the destination. */
  async function allFinished(execution: Execution): Promise<void> {
    const done = await finished(cluster[1]!, execution, 30_000);
    expect(done.filter((job) => job.status !== 'finished').map((job) => `${job.id}: ${job.status} ${JSON.stringify(job.error)}`)).toEqual([]);
    const details = await Promise.all(done.map((job) => jobDetail(cluster[2]!, job.id)));
    expect(details.flatMap(ownershipProblems)).toEqual([]);
    const digests = await Promise.all(done.map((job) => destinationDigest(job.destination.split('/').slice(1).join('/'), 'v1')));
    expect(digests).toEqual(Array(10).fill(manyImage.digest));
  }

  it('restarted mid-run: every job finishes, none fails', async () => {
    const execution = await runningJobs('restarted', 'many/r1[0-9]');
    await server.restart();
    await allFinished(execution);
  });

  it('away for longer than a lease: the API answers 503 meanwhile, then every job finishes, none fails', async () => {
    const execution = await runningJobs('outage', 'many/r2[0-9]');
    await server.stop();
    try {
      for (const node of cluster) expect((await node.api('GET', '/jobs')).status).toBe(503);
      await sleep(4_000);
    } finally {
      await server.start();
    }
    await allFinished(execution);
  });
});

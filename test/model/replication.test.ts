import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globFilter } from '../../src/services/tag-filter.js';
import { replicationFixture, type ReplicationFixture } from '../support/fixture.js';
import { Coverage } from './coverage.js';
import { intactTags, seedImage, tagsOf } from './destination.js';
import { drive, driveBatch } from './drive.js';
import { replicationRealization } from './realize.js';
import { expectedHistory, startEngine, Steering } from './engine.js';
import { databases, ENGINES } from '../support/databases.js';
import { generatePaths, type ModelPath } from './paths.js';
import { batchModel, batchSpec, modelInput, NOTHING, replicationModel, replicationSpec } from './specs.js';

const ITEMS = ['i0', 'i1', 'i2', 'i3'];
const jobPaths = generatePaths(replicationSpec);
const batchPaths = generatePaths(batchSpec);

let fixture: ReplicationFixture;
let dir: string;
/** The source tags in the order the registry lists them, which is the order a job takes them. */
let listed: string[];

beforeAll(async () => {
  fixture = await replicationFixture(Object.fromEntries(ITEMS.map((tag) => [tag, { layers: [{ size: 3_000, seed: `model-${tag}` }] }])), 'model/app');
  dir = await mkdtemp(join(tmpdir(), 'ferry-model-'));
  listed = await tagsOf(fixture.source.host, 'model/app');
});

afterAll(async () => {
  await fixture?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

type ItemKind = 'missing' | 'blobsPresent' | 'already';

/** Batches a job path sees end (each took one tag with it), and whether its last is held when it ends. */
function batchesEnded(path: ModelPath): { ended: number; failed: boolean } {
  const ends = path.steps.filter((s) => s.event.type === 'xstate.done.actor.*');
  return { ended: ends.filter((s) => s.guard !== 'batchFailed').length, failed: ends.some((s) => s.guard === 'batchFailed') };
}

/** The source tags a job path works on: one per batch it sees, none when the source has nothing to copy. */
function jobWorld(path: ModelPath): string[] {
  if (path.variant === 'nothing to copy') return [];
  const { ended, failed } = batchesEnded(path);
  const copying = path.steps.some((s) => s.to === 'running.copying');
  // A batch still under way when the path ends (STOP, a failure) takes one tag more.
  const count = copying ? ended + (failed || path.steps.at(-1)!.to !== 'finished' ? 1 : 0) : 1;
  return listed.slice(0, Math.max(1, count));
}

/** What the destination holds of a batch path's one tag before it starts. */
function batchWorld(path: ModelPath): ItemKind {
  const planned = path.steps.find((s) => s.from === 'running.pullManifest' && s.event.outcome === 'done');
  return planned?.guard === 'alreadyOnDestination' ? 'already' : planned?.guard === null ? 'blobsPresent' : 'missing';
}

describe.each(ENGINES)('the replication and batch machines, path by path on the real engine, on %s', (engine) => {
  const coverage = { job: new Coverage(replicationModel), batch: new Coverage(batchModel) };
  const stores = databases(engine, () => dir);
  afterAll(() => stores.dropAll());

  it(`generates paths from the production machines (${jobPaths.length} of the job, ${batchPaths.length} of a batch)`, () => {
    for (const [model, paths] of [[replicationModel, jobPaths], [batchModel, batchPaths]] as const) {
      expect(paths.length).toBeGreaterThan(model.states.length);
      expect(paths.every((p) => model.finals.includes(p.steps.at(-1)!.to))).toBe(true);
    }
  });

  it('has the branches the issue requires: every pullManifest outcome, every end of a batch, STOP from every non-final state of the job, retry and failure in every phase', () => {
    const has = (model: typeof replicationModel, source: string, event: string, guard: string | null) => model.transitions.some((t) => t.source === source && t.event === event && t.guard === guard);
    for (const guard of ['isDryRun', 'alreadyOnDestination', 'blobsMissing', null]) expect(has(batchModel, 'running.pullManifest', 'xstate.done.actor.pullManifest', guard), `pullManifest ${guard}`).toBe(true);
    for (const guard of ['batchFailed', 'lastBatch', null]) expect(has(replicationModel, 'running.copying', 'xstate.done.actor.*', guard), `a batch done, ${guard}`).toBe(true);
    for (const state of replicationModel.states.filter((s) => !replicationModel.finals.includes(s))) expect(has(replicationModel, state, 'STOP', null), `STOP in ${state}`).toBe(true);
    for (const [model, phases] of [[replicationModel, ['initialize', 'check']], [batchModel, ['pullManifest', 'transferBlob', 'pushManifest']]] as const) {
      for (const phase of phases) expect(has(model, `running.${phase}`, `xstate.error.actor.${phase}`, 'canRetry') && has(model, `running.${phase}`, `xstate.error.actor.${phase}`, null), `errors in ${phase}`).toBe(true);
    }
  });

  /** A job on its own database and destination repository, with what the path needs seeded there. */
  async function setUp(name: string, items: string[], kinds: ItemKind[], dryRun: boolean, nothing: boolean) {
    const { sourceProxy, destinationProxy, destination, built } = fixture;
    const repository = `model/${engine}-${name}`;
    const before: string[] = [];
    for (const [i, kind] of kinds.entries()) {
      if (kind === 'missing') continue;
      await seedImage({ host: fixture.source.host, repository: 'model/app' }, { host: destination.host, repository }, built[items[i]!]!, { tag: kind === 'already' });
      if (kind === 'already') before.push(items[i]!);
    }
    const input = modelInput(`${sourceProxy.host}/model/app`, `${destinationProxy.host}/${repository}`, { tagFilter: nothing ? NOTHING : globFilter(items), dryRun });
    const running = await startEngine({
      database: await stores.fresh(name),
      coverage: [coverage.job, coverage.batch],
      registries: [sourceProxy.host, destinationProxy.host],
      job: { operation: 'copy', source: `${sourceProxy.host}/model/app`, destination: `${destinationProxy.host}/${repository}`, input },
    });
    return { repository, before, running, firstWrite: destinationProxy.requests.length };
  }

  async function checkWrites(firstWrite: number, dryRun: boolean) {
    if (!dryRun) return;
    const writes = fixture.destinationProxy.requests.slice(firstWrite).filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    expect(writes, 'a dry run writes nothing').toEqual([]);
  }

  for (const [index, path] of jobPaths.entries()) {
    it(`job, ${path.variant}: ${path.name}`, async () => {
      const dryRun = path.variant === 'dry run';
      const items = jobWorld(path);
      const { repository, running, firstWrite } = await setUp(`r${index}`, items, items.map(() => 'missing'), dryRun, path.variant === 'nothing to copy');
      const steering = new Steering();
      try {
        const job = await drive(running, steering, path.steps, replicationRealization(fixture, dryRun, items));
        const history = await running.service.store.jobs.history(job.id);
        coverage.job.recordHistory(history);
        expect(history.map((row) => row.to)).toEqual(expectedHistory(path.steps));
        // Each batch that ended pushed its tag, whole (manifest and blobs, source digest); nothing else is there.
        const pushed = dryRun ? [] : items.slice(0, batchesEnded(path).ended);
        if (job.status === 'finished') expect(job.progress).toMatchObject({ tagsCopied: pushed.length, tagsTotal: path.variant === 'nothing to copy' ? 0 : items.length });
        expect(await intactTags(fixture.destination.host, repository, fixture.built)).toEqual([...pushed].sort());
        await checkWrites(firstWrite, dryRun);
      } finally {
        steering.releaseAll();
        await running.close();
        fixture.clearFaults();
      }
    });
  }

  for (const [index, path] of batchPaths.entries()) {
    it(`batch, ${path.variant}: ${path.name}`, async () => {
      const dryRun = path.variant === 'dry run';
      const items = listed.slice(0, 1);
      const kind = batchWorld(path);
      const { repository, before, running, firstWrite } = await setUp(`b${index}`, items, [kind], dryRun, false);
      const steering = new Steering();
      try {
        const job = await driveBatch(running, steering, path.steps, replicationRealization(fixture, dryRun, items));
        coverage.job.recordHistory(await running.service.store.jobs.history(job.id));
        const pushed = path.steps.some((s) => s.from === 'running.pushManifest' && s.event.outcome === 'done');
        if (job.status === 'finished') expect(job.progress).toMatchObject({ tagsCopied: pushed ? 1 : 0, tagsUnchanged: kind === 'already' ? 1 : 0, tagsTotal: 1 });
        expect(await intactTags(fixture.destination.host, repository, fixture.built)).toEqual(pushed ? items : before);
        await checkWrites(firstWrite, dryRun);
      } finally {
        steering.releaseAll();
        await running.close();
        fixture.clearFaults();
      }
    });
  }

  it('covers every state and transition of both machines, as executed', () => {
    console.log(`${coverage.job.report()}\n${coverage.batch.report()}`);
    expect(coverage.job.missing()).toEqual({ states: [], transitions: [] });
    expect(coverage.batch.missing()).toEqual({ states: [], transitions: [] });
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globFilter } from '../../src/services/tag-filter.js';
import { replicationFixture, type ReplicationFixture } from '../support/fixture.js';
import { Coverage } from './coverage.js';
import { intactTags, seedImage, tagsOf } from './destination.js';
import { drive } from './drive.js';
import { replicationRealization } from './realize.js';
import { expectedHistory, startEngine, Steering } from './engine.js';
import { databases, ENGINES } from '../support/databases.js';
import { generatePaths, type ModelPath } from './paths.js';
import { modelInput, replicationModel, replicationSpec } from './specs.js';

const ITEMS = ['i0', 'i1', 'i2', 'i3'];
const paths = generatePaths(replicationSpec);

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

/** The source tags a path works on, and what the destination holds of each before it starts. */
function worldFor(path: ModelPath): { items: string[]; kinds: ItemKind[] } {
  const kinds: ItemKind[] = [];
  let exact: number | undefined;
  for (const step of path.steps.filter((s) => s.from === 'running.pullManifest')) {
    if (step.event.outcome === 'done' && step.guard === 'noTagLeft') exact = kinds.length;
    else if (step.event.outcome === 'done') kinds.push(step.guard === 'alreadyOnDestination' ? 'already' : step.guard === null ? 'blobsPresent' : 'missing');
  }
  const needed = path.steps.some((s) => s.from === 'running.pullManifest' && s.event.outcome !== 'done') || path.steps.at(-1)?.to === 'running.pullManifest' ? kinds.length + 1 : kinds.length;
  while (kinds.length < (exact ?? needed)) kinds.push('missing');
  if (kinds.length > ITEMS.length) throw new Error(`${path.name} needs ${kinds.length} source tags`);
  return { items: listed.slice(0, kinds.length), kinds };
}

describe.each(ENGINES)('the replication machine, path by path on the real engine, on %s', (engine) => {
  const coverage = new Coverage(replicationModel);
  const stores = databases(engine, () => dir);
  afterAll(() => stores.dropAll());

  it(`generates paths from the production machine (${paths.length})`, () => {
    expect(paths.length).toBeGreaterThan(replicationModel.states.length);
    expect(paths.every((p) => replicationModel.finals.includes(p.steps.at(-1)!.to))).toBe(true);
  });

  it('has the branches the issue requires: every pullManifest outcome, STOP from every non-final state, retry and failure in every phase', () => {
    const has = (source: string, event: string, guard: string | null) => replicationModel.transitions.some((t) => t.source === source && t.event === event && t.guard === guard);
    for (const guard of ['noTagLeft', 'isDryRun', 'alreadyOnDestination', 'blobsMissing', null]) expect(has('running.pullManifest', 'xstate.done.actor.pullManifest', guard), `pullManifest ${guard}`).toBe(true);
    for (const state of replicationModel.states.filter((s) => !replicationModel.finals.includes(s))) expect(has(state, 'STOP', null), `STOP in ${state}`).toBe(true);
    for (const phase of ['initialize', 'check', 'pullManifest', 'transferBlob', 'pushManifest']) {
      expect(has(`running.${phase}`, `xstate.error.actor.${phase}`, 'canRetry') && has(`running.${phase}`, `xstate.error.actor.${phase}`, null), `errors in ${phase}`).toBe(true);
    }
  });

  for (const [index, path] of paths.entries()) {
    it(`${path.variant}: ${path.name}`, async () => {
      const { sourceProxy, destinationProxy, destination, built } = fixture;
      const repository = `model/${engine}-r${index}`;
      const dryRun = path.variant === 'dry run';
      const { items, kinds } = worldFor(path);
      const before: string[] = [];
      for (const [i, kind] of kinds.entries()) {
        if (kind === 'missing') continue;
        await seedImage({ host: fixture.source.host, repository: 'model/app' }, { host: destination.host, repository }, built[items[i]!]!, { tag: kind === 'already' });
        if (kind === 'already') before.push(items[i]!);
      }
      const input = modelInput(`${sourceProxy.host}/model/app`, `${destinationProxy.host}/${repository}`, {
        tagFilter: globFilter(items.length > 0 ? items : ['none']),
        dryRun,
      });
      const running = await startEngine({
        database: await stores.fresh(`replication-${index}`),
        coverage,
        registries: [sourceProxy.host, destinationProxy.host],
        job: { operation: 'copy', source: `${sourceProxy.host}/model/app`, destination: `${destinationProxy.host}/${repository}`, input },
      });
      const firstWrite = destinationProxy.requests.length;
      const steering = new Steering();
      try {
        const job = await drive(running, steering, path.steps, replicationRealization(fixture, dryRun, items));
        const history = await running.service.store.jobs.history(job.id);
        coverage.recordHistory(history);
        expect(history.map((row) => row.to)).toEqual(expectedHistory(path.steps));

        const pushed = path.steps.filter((s) => s.from === 'running.pushManifest' && s.event.outcome === 'done').length;
        const unchanged = kinds.filter((k, i) => k === 'already' && i < pathBatches(path)).length;
        if (job.status === 'finished') expect(job.progress).toMatchObject({ tagsCopied: pushed, tagsUnchanged: unchanged, tagsTotal: items.length });
        // Tags pushed are whole (manifest and blobs, source digest); nothing else is there.
        const pushedTags = items.filter((_, i) => i < pushedBatches(path).length && pushedBatches(path)[i]);
        expect(await intactTags(destination.host, repository, built)).toEqual([...before, ...pushedTags].sort());
        if (dryRun) {
          const writes = destinationProxy.requests.slice(firstWrite).filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
          expect(writes, 'a dry run writes nothing').toEqual([]);
        }
      } finally {
        steering.releaseAll();
        await running.close();
        fixture.clearFaults();
      }
    });
  }

  it('covers every state and transition of the machine, as executed', () => {
    console.log(coverage.report());
    expect(coverage.missing()).toEqual({ states: [], transitions: [] });
  });
});

/** Batches the path plans (pullManifest answers with a tag taken). */
function pathBatches(path: ModelPath): number {
  return path.steps.filter((s) => s.from === 'running.pullManifest' && s.event.outcome === 'done' && s.guard !== 'noTagLeft').length;
}

/** For each planned batch, whether the path pushes it. */
function pushedBatches(path: ModelPath): boolean[] {
  const batches: boolean[] = [];
  for (const step of path.steps) {
    if (step.from === 'running.pullManifest' && step.event.outcome === 'done' && step.guard !== 'noTagLeft') batches.push(false);
    if (step.from === 'running.pushManifest' && step.event.outcome === 'done') batches[batches.length - 1] = true;
  }
  return batches;
}

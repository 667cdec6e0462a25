import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeletionInput } from '../../src/machines/deletion.js';
import { EVERY_TAG } from '../../src/services/tag-filter.js';
import { replicationFixture, type ReplicationFixture } from '../support/fixture.js';
import { Coverage } from './coverage.js';
import { intactTags, seedImage } from './destination.js';
import { drive, type Realization } from './drive.js';
import { expectedHistory, startEngine, Steering } from './engine.js';
import { databases, ENGINES } from '../support/databases.js';
import { generatePaths } from './paths.js';
import { deletionModel, deletionSpec, MODEL_RETRY } from './specs.js';

const paths = generatePaths(deletionSpec);

let fixture: ReplicationFixture;
let dir: string;

beforeAll(async () => {
  fixture = await replicationFixture({ gone: { layers: [{ size: 3_000, seed: 'model-deletion' }] } }, 'model/app');
  dir = await mkdtemp(join(tmpdir(), 'ferry-model-deletion-'));
});

afterAll(async () => {
  await fixture?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function realization(): Realization {
  const proxy = fixture.destinationProxy;
  const markers: Record<string, Realization['marker']> = {
    initialize: () => ({ proxy, method: 'GET', path: /\/tags\/list\?n=\d+$/ }),
    delete: () => ({ proxy, method: 'HEAD', path: /\/manifests\/gone$/ }),
  };
  return {
    marker: (phase, item) => markers[phase]!(phase, item),
    failure: (_phase, kind, longWait) => {
      if (kind === 'permanent') return { fault: { type: 'status', status: 403 }, code: 'DENIED' };
      if (kind === 'exhausted') return { fault: { type: 'reset' }, code: 'NETWORK' };
      return { fault: { type: 'status', status: 503, ...(longWait ? { headers: { 'retry-after': '600' } } : {}) }, code: 'SERVER_ERROR' };
    },
  };
}

describe.each(ENGINES)('the deletion machine, path by path on the real engine, on %s', (engine) => {
  const coverage = new Coverage(deletionModel);
  const stores = databases(engine, () => dir);
  afterAll(() => stores.dropAll());

  it(`generates paths from the production machine (${paths.length})`, () => {
    expect(paths.length).toBeGreaterThan(deletionModel.finals.length);
    expect(paths.every((p) => deletionModel.finals.includes(p.steps.at(-1)!.to))).toBe(true);
  });

  for (const [index, path] of paths.entries()) {
    it(path.name, async () => {
      const { destinationProxy, destination, built } = fixture;
      const repository = `model/${engine}-d${index}`;
      await seedImage({ host: fixture.source.host, repository: 'model/app' }, { host: destination.host, repository }, built.gone!, { tag: true });
      const input: DeletionInput = { destination: { registry: destinationProxy.host, repository }, tagFilter: EVERY_TAG, concurrency: 1, retry: MODEL_RETRY };
      const running = await startEngine({
        database: await stores.fresh(`deletion-${index}`),
        coverage: [coverage],
        registries: [destinationProxy.host],
        job: { operation: 'delete', source: null, destination: `${destinationProxy.host}/${repository}`, input },
      });
      const steering = new Steering();
      try {
        const job = await drive(running, steering, path.steps, realization());
        const history = await running.service.store.jobs.history(job.id);
        coverage.recordHistory(history);
        expect(history.map((row) => row.to)).toEqual(expectedHistory(path.steps));
        // A finished deletion leaves no tag; any other end leaves the tag whole.
        expect(await intactTags(destination.host, repository, built)).toEqual(job.status === 'finished' ? [] : ['gone']);
        if (job.status === 'finished') expect(job.progress).toMatchObject({ tagsTotal: 1, tagsDeleted: 1 });
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

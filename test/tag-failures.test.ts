import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryService } from '../src/services/service.js';
import type { Job } from '../src/services/store/types.js';
import { until } from './model/engine.js';
import { ferry, replicate, replicationInput } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { openUploads } from './support/registry.js';
import { listTags } from './support/skopeo.js';

const REPOSITORY = 'team/app';
const TAGS = ['good-1', 'corrupt', 'missing', 'good-2'];

let fixture: ReplicationFixture;
let dir: string;
/** The blob of `corrupt`'s own layer in the source's storage, and its bytes as pushed. */
let corruptBlob: { file: string; bytes: Buffer };

const storage = (registry: ReplicationFixture['source'], ...path: string[]) => join(registry.dataDir, 'docker/registry/v2', ...path);

beforeAll(async () => {
  fixture = await replicationFixture(Object.fromEntries(TAGS.map((tag) => [tag, { layers: [{ size: 50_000, seed: `tag-failures-${tag}` }] }])), REPOSITORY);
  dir = await mkdtemp(join(tmpdir(), 'ferry-tag-failures-'));
  const { built, source } = fixture;
  // A layer whose stored bytes no longer match its digest, as a disk or a bad sync leaves it.
  const layer = built.corrupt!.blobs.find((digest) => !TAGS.filter((t) => t !== 'corrupt').some((t) => built[t]!.blobs.includes(digest)))!;
  const hex = layer.slice('sha256:'.length);
  const file = storage(source, 'blobs/sha256', hex.slice(0, 2), hex, 'data');
  const bytes = await readFile(file);
  corruptBlob = { file, bytes };
  const flipped = Buffer.from(bytes);
  flipped[flipped.length - 1]! ^= 0xff;
  await writeFile(file, flipped);
  // A tag still listed whose manifest the registry no longer serves.
  await rm(storage(source, 'repositories', REPOSITORY, '_manifests/revisions/sha256', built.missing!.digest.slice('sha256:'.length)), { recursive: true });
});

afterAll(async () => {
  await fixture?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const input = (repository: string) => replicationInput(`${fixture.sourceProxy.host}/${REPOSITORY}`, `${fixture.destinationProxy.host}/${repository}`);

describe('a bad tag fails alone', () => {
  it('copies the good tags of a repository with a corrupt layer and a missing manifest, and names the two that failed', async () => {
    const repository = 'alone/app';
    const { status, actor, events } = await replicate(input(repository));
    expect(status).toBe('finished');
    expect(actor.getSnapshot().context.progress).toMatchObject({ tagsTotal: 4, tagsCopied: 2, tagsFailed: 2 });
    const failed = Object.fromEntries(events.flatMap((e) => (e.type === 'tag.failed' ? [[e.item.target, e.error]] : [])));
    expect(failed.corrupt).toMatchObject({ code: 'DIGEST_MISMATCH', message: expect.stringMatching(/^GET blob .*\/team\/app@sha256:[0-9a-f]{64}: content has digest sha256:[0-9a-f]{64}/) });
    expect(failed.missing).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining(`/team/app:missing`) });
    expect((await listTags({ host: fixture.destination.host, repository })).sort()).toEqual(['good-1', 'good-2']);
    // The corrupt layer's upload was cancelled, not left open.
    expect(await openUploads(fixture.destination, repository)).toEqual([]);
  });

  it('ferry copy finishes the others, exits 1 and names the failed tags in its summary', async () => {
    const result = await ferry(['copy', `${fixture.sourceProxy.host}/${REPOSITORY}`, `${fixture.destinationProxy.host}/alone/cli`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^failed {5}corrupt  sha256:[0-9a-f]{64}  GET blob /m);
    expect(result.stdout).toMatch(/^failed {5}missing  -  GET manifest .*\/team\/app:missing: 404 MANIFEST_UNKNOWN/m);
    expect(result.stdout).toMatch(/^finished: 4 tags \(2 copied, 0 unchanged, 2 failed\);/m);
    expect(result.stderr).toMatch(/^failed: (corrupt, missing|missing, corrupt) \(/m);
  });

  it('a tag and a digest given together must agree', async () => {
    const src = `${fixture.sourceProxy.host}/${REPOSITORY}`;
    const dst = `${fixture.destinationProxy.host}/pinned/app`;
    const wrong = await ferry(['copy', `${src}:good-1@${fixture.built['good-2']!.digest}`, `${dst}:good-1`]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toContain(`${src}:good-1 is ${fixture.built['good-1']!.digest}, not ${fixture.built['good-2']!.digest} as given with it`);
    expect(await listTags({ host: fixture.destination.host, repository: 'pinned/app' })).toEqual([]);

    const agreeing = await ferry(['copy', `${src}:good-1@${fixture.built['good-1']!.digest}`, `${dst}:good-1`]);
    expect(agreeing.code, agreeing.stderr).toBe(0);
    expect(await listTags({ host: fixture.destination.host, repository: 'pinned/app' })).toEqual(['good-1']);
  });

  it('in the service: the job and its execution finish with the failures counted, and a retry copies only what is still missing', async () => {
    const service = await FerryService.start({ database: join(dir, 'ferry.db'), workers: 2, logger: pino({ level: 'silent' }) });
    try {
      const { sourceProxy, destinationProxy } = fixture;
      for (const url of [sourceProxy.host, destinationProxy.host]) await service.store.registries.create({ name: url, url });
      const repository = 'alone/service';
      const { execution, jobs } = await service.store.executions.create({
        policyId: null,
        trigger: 'manual',
        jobs: [{ operation: 'copy', source: `${sourceProxy.host}/${REPOSITORY}`, destination: `${destinationProxy.host}/${repository}`, input: input(repository) }],
      });
      service.pool.wake();
      const id = jobs[0]!.id;
      const ended = async (): Promise<Job> => until(`job ${id} ended`, async () => {
        const job = await service.store.jobs.get(id);
        return job && ['finished', 'error', 'stopped'].includes(job.status) ? job : undefined;
      });
      const first = await ended();
      expect(first).toMatchObject({ status: 'finished', progress: { tagsCopied: 2, tagsFailed: 2 } });
      expect(await service.control.execution(execution.id)).toMatchObject({ status: 'finished', tagsFailed: 2 });
      const log = (await service.store.jobs.logs(id)).map((entry) => entry.message);
      expect(log).toContainEqual(expect.stringMatching(/^failed corrupt: GET blob /));

      // The layer is repaired; the missing manifest is not.
      await cp(corruptBlob.file, `${corruptBlob.file}.bad`);
      await writeFile(corruptBlob.file, corruptBlob.bytes);
      const before = destinationProxy.requests.length;
      expect((await service.control.retryJob(id)).status).toBe('pending');
      await until('job requeued', async () => (await service.store.jobs.get(id))?.status !== 'finished');
      const retried = await ended();
      expect(retried).toMatchObject({ status: 'finished', progress: { tagsCopied: 1, tagsUnchanged: 2, tagsFailed: 1 } });
      const pushed = destinationProxy.requests.slice(before).filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'));
      expect(pushed.map((r) => r.path.split('/manifests/')[1])).toEqual(['corrupt']);
      expect((await listTags({ host: fixture.destination.host, repository })).sort()).toEqual(['corrupt', 'good-1', 'good-2']);
    } finally {
      await service.close();
      await cp(`${corruptBlob.file}.bad`, corruptBlob.file).catch(() => undefined);
    }
  });
});

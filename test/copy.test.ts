import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toPromise } from 'xstate';
import { BlobLocator } from '../src/services/blob-locator.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { batchPhases } from '../src/machines/status.js';
import { createReplication } from '../src/services/interpreter.js';
import { ENGINES, suiteStore } from './support/databases.js';
import type { FaultProxy } from './support/fault-proxy.js';
import { environment, ferry, replicate, replicationInput } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import type { TagSpec } from './support/images.js';
import { listTags, rawManifest } from './support/skopeo.js';

const base = { size: 256 * 1024, seed: 'base' };
const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' };
const armv7 = { os: 'linux', architecture: 'arm', variant: 'v7' };

const TAGS: Record<string, TagSpec> = {
  '1.0': { layers: [base, { size: 40_000, seed: 'app-1.0' }] },
  '1.1': { layers: [base, { size: 50_000, seed: 'app-1.1' }] },
  '2.0': { layers: [base, { size: 60_000, seed: 'app-2.0' }, { size: 1000, seed: 'extra-2.0' }] },
  'dev-1': { layers: [base, { size: 70_000, seed: 'dev-1' }] },
  multi: {
    platforms: [
      { layers: [base, { size: 10_000, seed: 'multi-amd64' }], platform: amd64 },
      { layers: [base, { size: 11_000, seed: 'multi-arm64' }], platform: arm64 },
      { layers: [base, { size: 12_000, seed: 'multi-armv7' }], platform: armv7 },
    ],
  },
};

let fixture: ReplicationFixture;
let built: ReplicationFixture['built'];
let source: ReplicationFixture['source'];
let destination: ReplicationFixture['destination'];
let proxy: FaultProxy;

beforeAll(async () => {
  fixture = await replicationFixture(TAGS, 'team/app');
  ({ built, source, destination, destinationProxy: proxy } = fixture);
});

afterAll(() => fixture?.stop());

const writes = (from: number) => proxy.requests.slice(from).filter((r) => r.method !== 'GET' && r.method !== 'HEAD');

async function expectSameDigests(tags: string[], repository: string) {
  for (const tag of tags) {
    const copied = await rawManifest({ host: destination.host, repository, tag });
    expect(copied.digest, `digest of ${repository}:${tag}`).toBe(built[tag]!.digest);
  }
}

describe('ferry copy', () => {
  it('copies one tag byte for byte', async () => {
    const result = await ferry(['copy', `${source.host}/team/app:1.0`, `${destination.host}/single/app:1.0`]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`copied     1.0  ${built['1.0']!.digest}`);
    await expectSameDigests(['1.0'], 'single/app');
    expect(await listTags({ host: destination.host, repository: 'single/app' })).toEqual(['1.0']);
  });

  it('copies the tags a filter selects, and each shared blob once', async () => {
    const before = proxy.requests.length;
    const result = await ferry(['copy', `${source.host}/team/app`, `${proxy.host}/filtered/app`, '--tags', '*.*', '--tags', '!2.*']);
    expect(result.code, result.stderr).toBe(0);
    expect((await listTags({ host: destination.host, repository: 'filtered/app' })).sort()).toEqual(['1.0', '1.1']);
    await expectSameDigests(['1.0', '1.1'], 'filtered/app');
    const blobUploads = writes(before).filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/'));
    const uniqueBlobs = new Set([...built['1.0']!.blobs, ...built['1.1']!.blobs]);
    expect(blobUploads).toHaveLength(uniqueBlobs.size);
  });

  it('copies a multi-arch index with every platform, and a re-run writes nothing', async () => {
    const first = await replicate(replicationInput(`${source.host}/team/app`, `${proxy.host}/all/app`));
    expect(first.status).toBe('finished');
    await expectSameDigests(Object.keys(TAGS), 'all/app');
    for (const child of built.multi!.manifests) {
      const head = await fetch(`${destination.url}/v2/all/app/manifests/${child}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(head.status, `child ${child}`).toBe(200);
    }

    const before = proxy.requests.length;
    const second = await replicate(replicationInput(`${source.host}/team/app`, `${proxy.host}/all/app`));
    expect(second.status).toBe('finished');
    expect(second.actor.getSnapshot().context.progress).toMatchObject({ tagsUnchanged: 5, tagsCopied: 0, blobsCopied: 0 });
    // One POST+DELETE pair proves push access; nothing else is written.
    expect(writes(before).map((r) => r.method)).toEqual(['POST', 'DELETE']);
    expect(proxy.requests.slice(before).filter((r) => r.method === 'GET' && r.path.includes('/manifests/'))).toEqual([]);
  });

  it('mounts blobs it knows in another repository of the destination instead of uploading them', async () => {
    const locator = new BlobLocator();
    const env = environment({ locator });
    expect((await replicate(replicationInput(`${source.host}/team/app`, `${proxy.host}/mount/a`, { items: [{ source: '1.0', target: '1.0' }] }), env)).status).toBe('finished');
    const before = proxy.requests.length;
    const second = await replicate(replicationInput(`${source.host}/team/app`, `${proxy.host}/mount/b`, { items: [{ source: '1.0', target: '1.0' }] }), env);
    expect(second.status).toBe('finished');
    expect(second.actor.getSnapshot().context.progress).toMatchObject({ blobsMounted: built['1.0']!.blobs.length, blobsCopied: 0 });
    expect(writes(before).filter((r) => r.path.includes('mount=')).every((r) => r.status === 201)).toBe(true);
    await expectSameDigests(['1.0'], 'mount/b');
  });

  it('uploads a blob two jobs need at the same time once: the second waits for it and mounts it', async () => {
    const env = environment({ locator: new BlobLocator() });
    const input = (repository: string) => replicationInput(`${fixture.sourceProxy.host}/team/app`, `${proxy.host}/${repository}`, { items: [{ source: '1.0', target: '1.0' }] });
    const held = fixture.sourceProxy.hold({ method: 'GET', path: /\/blobs\/sha256:/ });
    const before = proxy.requests.length;
    const first = createReplication(input('together/one'), env);
    first.start();
    first.send({ type: 'START' });
    const heldDigest = fixture.sourceProxy.requests[await held.arrived]!.path.split('/blobs/')[1]!;
    const second = createReplication(input('together/two'), env);
    second.start();
    second.send({ type: 'START' });
    for (let i = 0; i < 200 && !batchPhases(second.getSnapshot()).includes('transferBlob'); i++) await sleep(10);
    expect(batchPhases(second.getSnapshot())).toContain('transferBlob');
    await sleep(100);
    held.release();
    await Promise.all([toPromise(first), toPromise(second)]);

    expect(second.getSnapshot().context.progress).toMatchObject({ blobsMounted: built['1.0']!.blobs.length, blobsCopied: 0 });
    const uploads = writes(before).filter((r) => r.method === 'PUT' && r.path.includes(`digest=${encodeURIComponent(heldDigest)}`));
    expect(uploads).toHaveLength(1);
    await expectSameDigests(['1.0'], 'together/one');
    await expectSameDigests(['1.0'], 'together/two');
  });

  it('asks the destination about a blob two batches of a job need once, and puts it there once', async () => {
    const shared = built['1.0']!.blobs.find((digest) => built['1.1']!.blobs.includes(digest))!;
    const others = new Set([...built['1.0']!.blobs, ...built['1.1']!.blobs].filter((digest) => digest !== shared));
    const input = replicationInput(`${source.host}/team/app`, `${proxy.host}/batches/app`, {
      items: [
        { source: '1.0', target: '1.0' },
        { source: '1.1', target: '1.1' },
      ],
      batchSize: 1,
      batchesInFlight: 2,
    });
    const before = proxy.requests.length;
    const heads = (digest: string) => proxy.requests.slice(before).filter((r) => r.method === 'HEAD' && r.path === `/v2/batches/app/blobs/${digest}`);
    const held = proxy.hold({ method: 'HEAD', path: new RegExp(`/batches/app/blobs/${shared}$`) });
    const job = replicate(input);
    await held.arrived;
    // Both batches have asked about their other blobs: the one that also needs the held blob
    // waits for that answer instead of asking (or, later, uploading) again.
    for (let i = 0; i < 500 && [...others].some((digest) => heads(digest).length === 0); i++) await sleep(10);
    await sleep(100);
    expect([...others].map((digest) => heads(digest).length)).toEqual([...others].map(() => 1));
    expect(heads(shared)).toHaveLength(1);
    held.release();

    expect((await job).status).toBe('finished');
    expect(heads(shared)).toHaveLength(1);
    expect(writes(before).filter((r) => r.method === 'PUT' && r.path.includes(`digest=${encodeURIComponent(shared)}`))).toHaveLength(1);
    await expectSameDigests(['1.0', '1.1'], 'batches/app');
  });

  it('mounts from the source repository when both are on the same registry', async () => {
    const result = await replicate(replicationInput(`${source.host}/team/app`, `${source.host}/team/copy`, { items: [{ source: '2.0', target: 'stable' }] }));
    expect(result.status).toBe('finished');
    expect(result.actor.getSnapshot().context.progress).toMatchObject({ blobsMounted: built['2.0']!.blobs.length, blobsCopied: 0 });
    expect((await rawManifest({ host: source.host, repository: 'team/copy', tag: 'stable' })).digest).toBe(built['2.0']!.digest);
  });

  it('copies one platform of an index as that platform\'s manifest', async () => {
    const result = await ferry(['copy', `${source.host}/team/app:multi`, `${destination.host}/platform/one:multi`, '--platform', 'linux/arm64']);
    expect(result.code, result.stderr).toBe(0);
    const copied = await rawManifest({ host: destination.host, repository: 'platform/one', tag: 'multi' });
    expect(copied.digest).toBe(built.multi!.manifests[1]);
    expect(result.stdout).toContain(`differs from source ${built.multi!.digest}`);
  });

  it('copies several platforms of an index as a new index holding just them', async () => {
    const result = await ferry(['copy', `${source.host}/team/app:multi`, `${destination.host}/platform/two:multi`, '--platform', 'linux/amd64,linux/arm/v7']);
    expect(result.code, result.stderr).toBe(0);
    const copied = await rawManifest({ host: destination.host, repository: 'platform/two', tag: 'multi' });
    const index = JSON.parse(copied.bytes.toString()) as { manifests: Array<{ digest: string }> };
    expect(index.manifests.map((m) => m.digest)).toEqual([built.multi!.manifests[0], built.multi!.manifests[2]]);
    expect(copied.digest).not.toBe(built.multi!.digest);
  });

  it('prints a plan on --dry-run and writes nothing', async () => {
    const before = proxy.requests.length;
    const result = await ferry(['copy', `${source.host}/team/app`, `${proxy.host}/dry/app`, '--dry-run']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/dry run: 5 tags to copy, 0 unchanged; \d+ blobs to copy/);
    for (const tag of Object.keys(TAGS)) expect(result.stdout).toContain(`to copy    ${tag}  ${built[tag]!.digest}`);
    expect(writes(before)).toEqual([]);
    expect(await listTags({ host: destination.host, repository: 'dry/app' })).toEqual([]);
  });

  it('keeps a destination tag that points elsewhere when override is off, and replaces it when on', async () => {
    const item = (source: string) => ({ items: [{ source, target: 'moving' }] });
    expect((await replicate(replicationInput(`${source.host}/team/app`, `${destination.host}/override/app`, item('1.0')))).status).toBe('finished');

    const kept = await replicate(replicationInput(`${source.host}/team/app`, `${destination.host}/override/app`, { ...item('1.1'), override: false }));
    expect(kept.status).toBe('finished');
    expect(kept.actor.getSnapshot().context.progress).toMatchObject({ tagsKept: 1, tagsCopied: 0 });
    expect(kept.events).toContainEqual(expect.objectContaining({ type: 'tag.kept', digest: built['1.0']!.digest }));
    expect((await rawManifest({ host: destination.host, repository: 'override/app', tag: 'moving' })).digest).toBe(built['1.0']!.digest);

    const replaced = await replicate(replicationInput(`${source.host}/team/app`, `${destination.host}/override/app`, item('1.1')));
    expect(replaced.actor.getSnapshot().context.progress).toMatchObject({ tagsKept: 0, tagsCopied: 1 });
    expect((await rawManifest({ host: destination.host, repository: 'override/app', tag: 'moving' })).digest).toBe(built['1.1']!.digest);
  });

  it('holds blob bytes to --limit-rate', async () => {
    const started = performance.now();
    const result = await ferry(['copy', `${source.host}/team/app:2.0`, `${destination.host}/limited/app:2.0`, '--limit-rate', '256']);
    expect(result.code, result.stderr).toBe(0);
    // 256 KiB + 60 000 + 1 000 bytes of layers at 256 KiB/s: over a second, less one 0.1 s burst.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_100);
  });

  it('lists the destination\'s tags once, and fetches what it lacks without a HEAD on either side', async () => {
    const before = { source: fixture.sourceProxy.requests.length, destination: proxy.requests.length };
    const input = replicationInput(`${fixture.sourceProxy.host}/team/app`, `${proxy.host}/listed/app`, { tagFilter: { include: ['1.*'], exclude: [], syntax: 'glob' } });
    expect((await replicate(input)).status).toBe('finished');
    const manifests = (requests: typeof proxy.requests) => requests.filter((r) => r.path.includes('/manifests/')).map((r) => `${r.method} ${r.path.split('/manifests/')[1]}`);
    expect(manifests(fixture.sourceProxy.requests.slice(before.source)).sort()).toEqual(['GET 1.0', 'GET 1.1']);
    expect(manifests(proxy.requests.slice(before.destination)).sort()).toEqual(['PUT 1.0', 'PUT 1.1']);
    expect(proxy.requests.slice(before.destination).filter((r) => r.path.includes('/tags/list'))).toHaveLength(1);
    await expectSameDigests(['1.0', '1.1'], 'listed/app');
  });

  it('compares each tag once by HEAD on each side, in batches under way together, so a sync with nothing to copy takes one round', async () => {
    const input = replicationInput(`${fixture.sourceProxy.host}/team/app`, `${proxy.host}/ahead/app`, { batchSize: 1, batchesInFlight: 8 });
    expect((await replicate(input)).status).toBe('finished');
    const before = { source: fixture.sourceProxy.requests.length, destination: proxy.requests.length };
    // Every batch's HEADs are answered together: none ends before all have started.
    const held = proxy.hold({ method: 'HEAD', path: /\/manifests\// });
    let most = 0;
    const again = createReplication(input, environment());
    again.subscribe((snapshot) => void (most = Math.max(most, batchPhases(snapshot).length)));
    again.start();
    again.send({ type: 'START' });
    await held.arrived;
    for (let i = 0; i < 200 && most < 5; i++) await sleep(10);
    held.release();
    await toPromise(again);
    expect(most).toBe(5);
    expect(again.getSnapshot().context.progress).toMatchObject({ tagsUnchanged: 5, tagsCopied: 0 });
    const heads = (requests: typeof proxy.requests) => requests.filter((r) => r.method === 'HEAD' && r.path.includes('/manifests/')).map((r) => r.path);
    for (const side of [heads(fixture.sourceProxy.requests.slice(before.source)), heads(proxy.requests.slice(before.destination))]) {
      expect(side).toHaveLength(5);
      expect(new Set(side).size).toBe(5);
    }
    // The tags were listed once: that listing is what proves the source readable.
    expect(fixture.sourceProxy.requests.slice(before.source).filter((r) => r.path.includes('/tags/list'))).toHaveLength(1);
  });
});


describe.each(ENGINES)('two nodes on %s', (engine) => {
  const store = suiteStore(engine, 'nodes');

  it('upload a blob both need at the same time once: the copy on the second node waits for it and mounts it', async () => {
    // Two nodes: each its own process-wide locator, sharing only the store.
    const node = (id: string) => environment({ locator: new BlobLocator({ uploads: store().blobUploads, node: id, staleAfterMs: 60_000 }) });
    for (const id of ['A', 'B']) await store().nodes.register({ id, host: 'h', pid: 1 });
    const input = (repository: string) => replicationInput(`${fixture.sourceProxy.host}/team/app`, `${proxy.host}/${repository}`, { items: [{ source: '1.1', target: '1.1' }] });
    const held = fixture.sourceProxy.hold({ method: 'GET', path: /\/blobs\/sha256:/ });
    const before = proxy.requests.length;
    const first = createReplication(input(`${engine}-nodes/one`), node('A'));
    first.start();
    first.send({ type: 'START' });
    const heldDigest = fixture.sourceProxy.requests[await held.arrived]!.path.split('/blobs/')[1]!;
    const second = createReplication(input(`${engine}-nodes/two`), node('B'));
    second.start();
    second.send({ type: 'START' });
    for (let i = 0; i < 200 && !batchPhases(second.getSnapshot()).includes('transferBlob'); i++) await sleep(10);
    expect(batchPhases(second.getSnapshot())).toContain('transferBlob');
    await sleep(300);
    held.release();
    await Promise.all([toPromise(first), toPromise(second)]);

    const uploads = writes(before).filter((r) => r.method === 'PUT' && r.path.includes(`digest=${encodeURIComponent(heldDigest)}`));
    expect(uploads).toHaveLength(1);
    expect(second.getSnapshot().context.progress.blobsCopied).toBeLessThan(built['1.1']!.blobs.length);
    await expectSameDigests(['1.1'], `${engine}-nodes/one`);
    await expectSameDigests(['1.1'], `${engine}-nodes/two`);
  });
});

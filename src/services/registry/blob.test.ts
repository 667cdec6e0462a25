import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../../../test/support/fault-proxy.js';
import type { FaultProxy } from '../../../test/support/fault-proxy.js';
import { writeOciLayout } from '../../../test/support/images.js';
import type { BuiltTag } from '../../../test/support/images.js';
import { startRegistry } from '../../../test/support/registry.js';
import type { RunningRegistry } from '../../../test/support/registry.js';
import { seedTag } from '../../../test/support/skopeo.js';
import { getBlob, headBlob } from './blob.js';
import { RegistryClient } from './client.js';
import { digestOf } from './digest.js';
import { Repository } from './repository.js';
import { failure } from '../../../test/support/failure.js';

const LAYER_SIZE = 300 * 1024 + 17;

let layout: string;
let built: Record<string, BuiltTag>;
let registry: RunningRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let proxied: RegistryClient;
let app: Repository;
let viaProxy: Repository;
let layer: { digest: string; bytes: Buffer };
let config: { digest: string; bytes: Buffer };

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-blob-test-'));
  [built, registry] = await Promise.all([
    writeOciLayout(layout, { image: { layers: [{ size: LAYER_SIZE, seed: 'blob-layer' }] } }),
    startRegistry(),
  ]);
  await seedTag(layout, 'image', { host: registry.host, repository: 'team/app' });
  proxy = await startFaultProxy(registry.host);
  [client, proxied] = await Promise.all([RegistryClient.connect({ registry: registry.host }), RegistryClient.connect({ registry: proxy.host })]);
  app = new Repository(client, 'team/app', ['pull']);
  viaProxy = new Repository(proxied, 'team/app', ['pull']);

  const blobs = await Promise.all((built.image?.blobs ?? []).map(async (digest) => ({ digest, bytes: await layoutBlob(digest) })));
  layer = blobs.find((blob) => blob.bytes.length === LAYER_SIZE)!;
  config = blobs.find((blob) => blob.bytes.length !== LAYER_SIZE)!;
  expect(layer).toBeDefined();
  expect(config).toBeDefined();
});

afterEach(() => proxy.clearRules());

afterAll(async () => {
  await Promise.all([client?.close(), proxied?.close()]);
  await proxy?.stop();
  await registry?.stop();
  await rm(layout, { recursive: true, force: true });
});

function layoutBlob(digest: string): Promise<Buffer> {
  return readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('headBlob', () => {
  it('answers the size of a layer and of a config', async () => {
    expect(await headBlob(app, layer.digest)).toBe(LAYER_SIZE);
    expect(await headBlob(app, config.digest)).toBe(config.bytes.length);
  });

  it('answers undefined for an unknown digest or repository', async () => {
    expect(await headBlob(app, digestOf(Buffer.from('absent')))).toBeUndefined();
    expect(await headBlob(new Repository(client, 'no/such-repo', ['pull']), layer.digest)).toBeUndefined();
  });

  it('throws for other statuses instead of calling the blob absent', async () => {
    proxy.addRule({ method: 'HEAD', path: /\/blobs\//, fault: { type: 'status', status: 503 }, times: 1 });
    const error = await failure(headBlob(viaProxy, layer.digest));
    expect(error.code).toBe('SERVER_ERROR');
    expect(error.message).toMatch(new RegExp(`^HEAD blob ${proxy.host}/team/app@${layer.digest}: 503`));
  });
});

describe('getBlob', () => {
  it('streams the whole blob from offset 0', async () => {
    const blob = await getBlob(app, layer.digest);
    expect(blob.offset).toBe(0);
    const bytes = await collect(blob.body);
    expect(bytes.length).toBe(LAYER_SIZE);
    expect(digestOf(bytes)).toBe(layer.digest);
  });

  it('streams from an offset with a 206 and exactly the remaining bytes', async () => {
    const from = 123_457;
    const blob = await getBlob(viaProxy, layer.digest, { from });
    expect(proxy.requests.at(-1)).toMatchObject({ method: 'GET', path: `/v2/team/app/blobs/${layer.digest}`, status: 206 });
    expect(blob.offset).toBe(from);
    const bytes = await collect(blob.body);
    expect(bytes.equals(layer.bytes.subarray(from))).toBe(true);
  });

  it('streams the last byte alone', async () => {
    const blob = await getBlob(app, layer.digest, { from: LAYER_SIZE - 1 });
    expect(blob.offset).toBe(LAYER_SIZE - 1);
    expect(await collect(blob.body)).toEqual(layer.bytes.subarray(LAYER_SIZE - 1));
  });

  it('reports offset 0 when the registry ignores the Range and sends everything', async () => {
    proxy.addRule({ method: 'GET', path: /\/blobs\//, fault: { type: 'status', status: 200, body: config.bytes.toString() }, times: 1 });
    const blob = await getBlob(viaProxy, config.digest, { from: 10 });
    expect(blob.offset).toBe(0);
    expect((await collect(blob.body)).equals(config.bytes)).toBe(true);
  });

  it('fails with PROTOCOL when a 206 starts elsewhere than asked', async () => {
    proxy.addRule({
      method: 'GET',
      path: /\/blobs\//,
      fault: { type: 'status', status: 206, headers: { 'content-range': `bytes 0-9/${config.bytes.length}` }, body: config.bytes.subarray(0, 10).toString() },
      times: 1,
    });
    const error = await failure(getBlob(viaProxy, config.digest, { from: 5 }));
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toContain('asked for bytes from 5, got Content-Range bytes 0-9/');
  });

  it('fails with NOT_FOUND and BLOB_UNKNOWN for an unknown digest', async () => {
    const missing = digestOf(Buffer.from('absent'));
    const error = await failure(getBlob(app, missing));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toMatch(new RegExp(`^GET blob ${registry.host}/team/app@${missing}: 404 BLOB_UNKNOWN`));
  });

  it('passes its signal on: ABORTED when aborted before the answer', async () => {
    const controller = new AbortController();
    controller.abort();
    expect((await failure(getBlob(app, layer.digest, { signal: controller.signal }))).code).toBe('ABORTED');
  });
});

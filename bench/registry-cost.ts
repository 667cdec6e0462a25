/**
 * What each kind of request costs a distribution registry in CPU, the floor under every
 * copier on a machine where the registries share its cores: N requests of a kind, 8 at a time
 * over keep-alive connections, against one registry seeded with the many-small fixture.
 *   npx tsx bench/registry-cost.ts
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { startRegistry } from '../test/support/registry.js';
import { seedFixture } from './fixtures.js';
import { cpuSeconds } from './process.js';

const IN_FLIGHT = 8;
const BLOB_BYTES = 4096;

const dir = await mkdtemp(join(tmpdir(), 'ferry-registry-cost-'));
const registry = await startRegistry();
try {
  const seeded = await seedFixture('small', dir, registry.host);
  const tags = Object.values(seeded.tags);
  const blobs = tags.flatMap((tag) => tag.blobs.slice(0, 2));
  const pool = new Pool(registry.url, { connections: IN_FLIGHT });
  const repository = `/v2/${seeded.repository}`;

  const send = async (method: 'GET' | 'HEAD' | 'POST' | 'PUT', path: string, expected: number, body?: Buffer): Promise<string | undefined> => {
    const response = await pool.request({ method, path, body: body ?? null, reset: false, headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    await response.body.dump();
    if (response.statusCode !== expected) throw new Error(`${method} ${path}: ${response.statusCode}, expected ${expected}`);
    return response.headers.location as string | undefined;
  };
  const measure = async (kind: string, count: number, one: (i: number) => Promise<unknown>): Promise<void> => {
    const before = cpuSeconds(registry.pid);
    let next = 0;
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      for (let i = next++; i < count; i = next++) await one(i);
    }));
    const perRequest = ((cpuSeconds(registry.pid) - before) * 1000) / count;
    console.log(`${kind.padEnd(28)} ${perRequest.toFixed(2)} ms of registry CPU per request (${count} requests)`);
  };

  await measure('GET /v2/', 400, () => send('GET', '/v2/', 200));
  await measure('GET tags/list', 100, () => send('GET', `${repository}/tags/list`, 200));
  await measure('HEAD manifest by tag', tags.length, (i) => send('HEAD', `${repository}/manifests/${tags[i]!.tag}`, 200));
  await measure('GET manifest by digest', tags.length, (i) => send('GET', `${repository}/manifests/${tags[i]!.digest}`, 200));
  await measure('HEAD blob', blobs.length, (i) => send('HEAD', `${repository}/blobs/${blobs[i]}`, 200));
  await measure(`GET blob of ${BLOB_BYTES / 1024} KiB`, blobs.length, (i) => send('GET', `${repository}/blobs/${blobs[i]}`, 200));
  const sessions: string[] = [];
  await measure('POST upload (open a session)', blobs.length, async (i) => {
    sessions[i] = (await send('POST', `/v2/cost/upload/blobs/uploads/`, 202))!;
  });
  await measure(`PUT upload of ${BLOB_BYTES / 1024} KiB (commit)`, blobs.length, (i) => {
    const data = randomBytes(BLOB_BYTES);
    const target = new URL(sessions[i]!, registry.url);
    target.searchParams.set('digest', `sha256:${createHash('sha256').update(data).digest('hex')}`);
    return send('PUT', target.pathname + target.search, 201, data);
  });
  await measure('POST mount from a repository', blobs.length, (i) => send('POST', `/v2/cost/mount/blobs/uploads/?mount=${blobs[i]}&from=${seeded.repository}`, 201));
  await pool.close();
} finally {
  await registry.stop();
  await rm(dir, { recursive: true, force: true });
}

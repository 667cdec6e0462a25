import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../src/services/api/app.js';
import { FerryService } from '../src/services/service.js';
import { writeOciLayout, type BuiltTag } from './support/images.js';
import { freePort, startRegistry, type RunningRegistry } from './support/registry.js';
import { listTags, rawManifest, seedTag } from './support/skopeo.js';
import { digestTag, fetchManifest, generateSigningKeys, signImage } from './support/referrers.js';

const TOKEN = 'webhook-test-token';

let dir: string;
let built: Record<string, BuiltTag>;
let service: FerryService;
let api: FastifyInstance;
let source: RunningRegistry;
let destination: RunningRegistry;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-webhook-'));
  built = await writeOciLayout(join(dir, 'layout'), {
    'v1': { layers: [{ size: 50_000, seed: 'hook-1' }] },
    'v2': { platforms: [{ layers: [{ size: 20_000, seed: 'hook-amd64' }], platform: { os: 'linux', architecture: 'amd64' } }, { layers: [{ size: 20_000, seed: 'hook-arm64' }], platform: { os: 'linux', architecture: 'arm64' } }] },
    'skip-me': { layers: [{ size: 1_000, seed: 'hook-skip' }] },
  });
  service = await FerryService.start({ database: join(dir, 'ferry.db'), workers: 2, logger: pino({ level: 'silent' }) });
  const port = await freePort();
  api = await buildApi(service, { token: TOKEN });
  await api.listen({ host: '127.0.0.1', port });
  destination = await startRegistry();
  // The source registry notifies ferry's webhook, which names the registry by its id.
  const upstream = await service.store.registries.create({ name: 'source', url: 'pending.invalid' });
  source = await startRegistry({ notifyUrl: `http://127.0.0.1:${port}/api/v1/webhooks/registries/${upstream.id}`, notifyToken: TOKEN });
  await service.store.registries.update(upstream.id, { url: source.host });
  const target = await service.store.registries.create({ name: 'destination', url: destination.host });
  await service.store.policies.create({
    name: 'on-push',
    sourceRegistryId: upstream.id,
    destinationRegistryId: target.id,
    tags: { include: ['v*'], exclude: [], syntax: 'glob' },
    rewrite: { namespace: 'events', flatten: 0 },
    replicateDeletions: true,
    trigger: { type: 'event' },
  });
});

afterAll(async () => {
  await api?.close();
  await service?.close();
  await Promise.all([source?.stop(), destination?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

async function arrives(repository: string, tag: string, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const response = await fetch(`${destination.url}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' } });
    if (response.status === 200) return Date.now() - started;
    await sleep(20);
  }
  throw new Error(`${repository}:${tag} did not arrive within ${timeoutMs} ms`);
}

/** The finished deletion job that counts a referrer deleted, once its end is stored (a step after its last request). */
async function deletedReferrer(timeoutMs = 10_000) {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const job = (await service.store.jobs.list({ status: 'finished' })).items.find((j) => j.operation === 'delete' && j.progress.referrersDeleted === 1);
    if (job) return job;
    await sleep(50);
  }
  throw new Error(`no deletion job counted a referrer deleted within ${timeoutMs} ms`);
}

describe('event triggers', () => {
  it('replicate a tag pushed on the source within seconds, through the registry\'s notifications', async () => {
    const pushed = Date.now();
    await seedTag(join(dir, 'layout'), 'v1', { host: source.host, repository: 'hooks/app' });
    const afterPush = Date.now() - pushed;
    const latency = await arrives('events/hooks/app', 'v1');
    console.log(`push -> replicated: ${latency} ms after skopeo returned (the push took ${afterPush} ms)`);
    expect((await rawManifest({ host: destination.host, repository: 'events/hooks/app', tag: 'v1' })).digest).toBe(built.v1!.digest);
  });

  it('replicate a multi-arch index once, for its tag', async () => {
    await seedTag(join(dir, 'layout'), 'v2', { host: source.host, repository: 'hooks/app' });
    await arrives('events/hooks/app', 'v2');
    expect((await rawManifest({ host: destination.host, repository: 'events/hooks/app', tag: 'v2' })).digest).toBe(built.v2!.digest);
  });

  it('ignore a tag the policy filters out', async () => {
    const before = (await service.store.executions.list()).total;
    await seedTag(join(dir, 'layout'), 'skip-me', { host: source.host, repository: 'hooks/app' });
    await sleep(1_500);
    expect(await listTags({ host: destination.host, repository: 'events/hooks/app' })).not.toContain('skip-me');
    expect((await service.store.executions.list()).total).toBe(before);
  });

  it('replicate a deletion when the policy asks for it, the signature at the destination with it', async () => {
    const digest = built.v1!.digest;
    const signature = await signImage(destination.host, 'events/hooks/app', digest, generateSigningKeys().privateKey);
    const deleted = await fetch(`${source.url}/v2/hooks/app/manifests/${digest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    const started = Date.now();
    while (Date.now() - started < 20_000) {
      const head = await fetch(`${destination.url}/v2/events/hooks/app/manifests/${digest}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      if (head.status === 404) break;
      await sleep(50);
    }
    expect(await listTags({ host: destination.host, repository: 'events/hooks/app' })).toEqual(['v2']);
    expect(await fetchManifest(destination.host, 'events/hooks/app', signature.digest)).toBeUndefined();
    // The source notifies the deletion of the tag and of the manifest: two jobs, one of which deleted the signature.
    const job = await deletedReferrer();
    expect((await service.store.jobs.logs(job.id)).map((entry) => entry.message)).toContain(`deleted referrer ${digestTag(digest)}.sig of ${digest}`);
  });

  it('refuse a notification without the token', async () => {
    const response = await fetch(`http://127.0.0.1:${api.server.address() && (api.server.address() as { port: number }).port}/api/v1/webhooks/registries/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json' },
      body: JSON.stringify({ events: [] }),
    });
    expect(response.status).toBe(401);
  });
});

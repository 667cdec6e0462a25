import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../../test/support/fault-proxy.js';
import { writeOciLayout } from '../../../test/support/images.js';
import { startRegistry, type RunningRegistry } from '../../../test/support/registry.js';
import { seedTag } from '../../../test/support/skopeo.js';
import { POLICY_DEFAULTS } from '../domain/policy.js';
import { Registries } from '../registry/registries.js';
import type { Registry } from '../store/types.js';
import { previewPolicy } from './preview.js';

const SEEDED = ['team/a', 'team/b', 'team/c'];

let layout: string;
let source: RunningRegistry;
let destination: RunningRegistry;
let proxy: FaultProxy;
let registries: Registries;
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-preview-test-'));
  [, source, destination] = await Promise.all([writeOciLayout(layout, { v1: { layers: [{ size: 2048, seed: 'preview' }] } }), startRegistry(), startRegistry()]);
  await Promise.all(SEEDED.map((repository) => seedTag(layout, 'v1', { host: source.host, repository })));
  proxy = await startFaultProxy(source.host);
  registries = new Registries(async (registry) => ({ registry }));
});

afterAll(async () => {
  await registries?.close();
  await proxy?.stop();
  await Promise.all([source?.stop(), destination?.stop()]);
  await rm(layout, { recursive: true, force: true });
});

const registry = (url: string): Registry => ({ id: url, name: url, url, insecure: false, ca: null, hasCredentials: false, username: null, credentialHelper: null, createdAt: '', updatedAt: '' });
const policy = { ...POLICY_DEFAULTS, name: 'preview', sourceRegistryId: 'source', destinationRegistryId: 'destination' };
const never = new AbortController().signal;

describe('previewPolicy', () => {
  it('previews the first repositories the filters select, and counts them all', async () => {
    const preview = await previewPolicy({ ...policy, repositories: { include: ['team/**'], exclude: [] } }, registry(proxy.host), registry(destination.host), { registries, logger }, never, { repositories: 2, timeoutMs: 10_000 });
    expect(preview.repositoriesSelected).toBe(3);
    expect(preview.repositories.map((r) => r.source)).toEqual([`${proxy.host}/team/a`, `${proxy.host}/team/b`]);
    for (const repository of preview.repositories) expect(repository).toMatchObject({ listed: 1, selected: ['v1'], toCopy: [{ tag: 'v1' }], unchanged: [] });
    // The same blobs in both repositories: counted once in each, as each job copies them.
    expect(preview.bytes).toBe(preview.repositories[0]!.bytes * 2);
  });

  it('ends a dry run that outlasts the time bound, saying so', async () => {
    const held = proxy.hold({ method: 'GET', path: /\/team\/c\/tags\/list/ });
    const started = Date.now();
    const preview = await previewPolicy({ ...policy, repositories: { include: ['team/c'], exclude: [] } }, registry(proxy.host), registry(destination.host), { registries, logger }, never, { repositories: 10, timeoutMs: 1_000 });
    held.release();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(preview.repositories).toEqual([expect.objectContaining({ source: `${proxy.host}/team/c`, selected: [], error: 'not finished within the time bound' })]);
  });

  it('names what a registry refused', async () => {
    const preview = await previewPolicy({ ...policy, repositories: { include: ['team/a'], exclude: [] } }, registry(proxy.host), registry('127.0.0.1:9'), { registries, logger }, never, { repositories: 10, timeoutMs: 10_000 });
    expect(preview.repositories[0]?.error).toMatch(/127\.0\.0\.1:9/);
  });
});

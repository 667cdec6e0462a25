import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../../../test/support/fault-proxy.js';
import type { FaultProxy } from '../../../test/support/fault-proxy.js';
import { writeOciLayout } from '../../../test/support/images.js';
import { DEFAULT_USER, startRegistry } from '../../../test/support/registry.js';
import type { RunningRegistry } from '../../../test/support/registry.js';
import { seedTag } from '../../../test/support/skopeo.js';
import { listRepositories } from './catalog.js';
import { RegistryClient } from './client.js';
import { failure } from '../../../test/support/failure.js';

/** In the order distribution lists them: lexical. */
const REPOSITORIES = ['lib', 'other/x', 'team/a', 'team/b/c', 'zeta'];
const CATALOG_PATH = '/v2/_catalog';

let layout: string;
let plain: RunningRegistry;
let empty: RunningRegistry;
let basic: RunningRegistry;
let token: RunningRegistry;
let proxy: FaultProxy;
let proxied: RegistryClient;
const opened: RegistryClient[] = [];

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-catalog-test-'));
  [, plain, empty, basic, token] = await Promise.all([
    writeOciLayout(layout, { v1: { layers: [{ size: 128, seed: 'catalog' }] } }),
    startRegistry(),
    startRegistry(),
    startRegistry({ auth: 'htpasswd' }),
    startRegistry({ auth: 'token' }),
  ]);
  await Promise.all([
    ...REPOSITORIES.map((repository) => seedTag(layout, 'v1', { host: plain.host, repository })),
    ...[basic, token].map((registry) => seedTag(layout, 'v1', { host: registry.host, repository: 'team/a', creds: DEFAULT_USER })),
  ]);
  proxy = await startFaultProxy(plain.host);
  proxied = await connect(proxy.host);
});

afterEach(() => proxy.clearRules());

afterAll(async () => {
  await Promise.all(opened.map((client) => client.close()));
  await proxy?.stop();
  await Promise.all([plain, empty, basic, token].map((registry) => registry?.stop()));
  await rm(layout, { recursive: true, force: true });
});

async function connect(registry: string, credentials?: typeof DEFAULT_USER): Promise<RegistryClient> {
  const client = await RegistryClient.connect({ registry, ...(credentials ? { credentials } : {}) });
  opened.push(client);
  return client;
}

function catalogRequests(): string[] {
  return proxy.requests.filter((request) => request.path.startsWith(CATALOG_PATH)).map((request) => request.path);
}

function serveCatalog(status: number, body: string, times = 1): void {
  proxy.addRule({ method: 'GET', path: /^\/v2\/_catalog/, fault: { type: 'status', status, headers: { 'content-type': 'application/json' }, body }, times });
}

describe('listRepositories', () => {
  it('lists every repository of an anonymous registry, nested paths included', async () => {
    expect(await listRepositories(await connect(plain.host))).toEqual(REPOSITORIES);
  });

  it('answers an empty list for a registry without repositories', async () => {
    expect(await listRepositories(await connect(empty.host))).toEqual([]);
  });

  it('lists with Basic credentials (htpasswd)', async () => {
    expect(await listRepositories(await connect(basic.host, DEFAULT_USER))).toEqual(['team/a']);
  });

  it('lists with a Bearer token for registry:catalog:*', async () => {
    const before = token.tokenRequests ?? 0;
    expect(await listRepositories(await connect(token.host, DEFAULT_USER))).toEqual(['team/a']);
    expect(token.tokenRequests).toBe(before + 1);
  });

  it('asks once more for a catalog token the registry refuses, then fails with UNAUTHORIZED', async () => {
    // Anonymous tokens grant nothing here: the registry's challenge asks for the scope
    // requested, so the client retries once with a fresh token before giving up.
    const before = token.tokenRequests ?? 0;
    const error = await failure(listRepositories(await connect(token.host)));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.message).toMatch(new RegExp(`^list repositories of ${token.host.replace(/\./g, '\\.')}: 401`));
    expect(token.tokenRequests).toBe(before + 2);
  });

  it('asks for pages of 1000 repositories by default: one request here', async () => {
    proxy.requests.length = 0;
    expect(await listRepositories(proxied)).toEqual(REPOSITORIES);
    expect(catalogRequests()).toEqual([`${CATALOG_PATH}?n=1000`]);
  });

  it("follows the registry's own Link pages of the asked size", async () => {
    // Unlike tag lists, distribution 2.8 paginates the catalog itself: n, last and Link.
    proxy.requests.length = 0;
    expect(await listRepositories(proxied, undefined, { pageSize: 2 })).toEqual(REPOSITORIES);
    expect(catalogRequests()).toEqual([
      `${CATALOG_PATH}?n=2`,
      `${CATALOG_PATH}?last=other%2Fx&n=2`,
      `${CATALOG_PATH}?last=team%2Fb%2Fc&n=2`,
    ]);
  });

  it('ends with PROTOCOL when a Link points back to a listed page', async () => {
    proxy.addRule({
      method: 'GET',
      path: /^\/v2\/_catalog\?n=2$/,
      fault: { type: 'status', status: 200, headers: { link: `<${CATALOG_PATH}?n=2>; rel="next"` }, body: '{"repositories":["a"]}' },
      times: 3,
    });
    proxy.requests.length = 0;
    const error = await failure(listRepositories(proxied, undefined, { pageSize: 2 }));
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toBe(`list repositories of ${proxy.host}: Link header points back to an already listed page`);
    expect(catalogRequests()).toHaveLength(1);
  });

  it('fails with NOT_FOUND for a registry without a catalog endpoint', async () => {
    serveCatalog(404, '{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}');
    const error = await failure(listRepositories(proxied));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toBe(`list repositories of ${proxy.host}: 404 UNSUPPORTED: The operation is unsupported.`);
  });

  it.each([
    ['no "repositories"', '{}'],
    ['"repositories": null', '{"repositories":null}'],
  ])('answers an empty list for %s', async (_name, body) => {
    serveCatalog(200, body);
    expect(await listRepositories(proxied)).toEqual([]);
  });

  it.each([
    ['a body that is not JSON', '<html>oops</html>', 'answer is not JSON'],
    ['a JSON list', '["team/a"]', 'answer is not a JSON object'],
    ['"repositories" that is not a list', '{"repositories":"team/a"}', '"repositories" is not a list'],
  ])('fails with PROTOCOL for %s', async (_name, body, problem) => {
    serveCatalog(200, body);
    const error = await failure(listRepositories(proxied));
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toBe(`list repositories of ${proxy.host}: ${problem}`);
  });

  it('fails with a transient SERVER_ERROR for a 503', async () => {
    serveCatalog(503, '');
    const error = await failure(listRepositories(proxied));
    expect(error.code).toBe('SERVER_ERROR');
    expect(error.transient).toBe(true);
  });

  it.each([0, -1, 2.5])('refuses page size %s with INVALID_CONFIG', async (pageSize) => {
    expect((await failure(listRepositories(proxied, undefined, { pageSize }))).code).toBe('INVALID_CONFIG');
  });

  it('stops with ABORTED when the signal is aborted', async () => {
    expect((await failure(listRepositories(proxied, AbortSignal.abort()))).code).toBe('ABORTED');
  });
});

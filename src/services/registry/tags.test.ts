import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../../../test/support/fault-proxy.js';
import type { FaultProxy } from '../../../test/support/fault-proxy.js';
import { writeOciLayout } from '../../../test/support/images.js';
import { startRegistry } from '../../../test/support/registry.js';
import type { RunningRegistry } from '../../../test/support/registry.js';
import { seedTag } from '../../../test/support/skopeo.js';
import { RegistryClient } from './client.js';
import { getManifest, putManifest } from './manifest.js';
import { Repository } from './repository.js';
import { listTags } from './tags.js';
import { failure } from '../../../test/support/failure.js';

const TAG_COUNT = 25;
const TAGS_PATH = '/v2/team/app/tags/list';

let layout: string;
let registry: RunningRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let proxied: RegistryClient;
let app: Repository;
let viaProxy: Repository;
/** The tags in the order the registry lists them. */
let registryOrder: string[];

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-tags-test-'));
  [, registry] = await Promise.all([writeOciLayout(layout, { v0: { layers: [{ size: 256, seed: 'tags' }] } }), startRegistry()]);
  await seedTag(layout, 'v0', { host: registry.host, repository: 'team/app' });
  proxy = await startFaultProxy(registry.host);
  [client, proxied] = await Promise.all([RegistryClient.connect({ registry: registry.host }), RegistryClient.connect({ registry: proxy.host })]);
  app = new Repository(client, 'team/app', ['pull', 'push']);
  viaProxy = new Repository(proxied, 'team/app', ['pull']);
  // The same manifest under 24 more tags.
  const manifest = await getManifest(app, 'v0');
  await Promise.all(Array.from({ length: TAG_COUNT - 1 }, (_, i) => putManifest(app, `v${i + 1}`, manifest)));
  const response = await fetch(`${registry.url}${TAGS_PATH}`);
  registryOrder = ((await response.json()) as { tags: string[] }).tags;
});

afterEach(() => proxy.clearRules());

afterAll(async () => {
  await Promise.all([client?.close(), proxied?.close()]);
  await proxy?.stop();
  await registry?.stop();
  await rm(layout, { recursive: true, force: true });
});

const expectedTags = (): string[] => Array.from({ length: TAG_COUNT }, (_, i) => `v${i}`).sort();

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Serves one page of tags for exactly `pathAndQuery`, with an optional Link to the next page. */
function servePage(pathAndQuery: string, tags: string[], next?: string, times = 1): void {
  proxy.addRule({
    method: 'GET',
    path: new RegExp(`^${escape(pathAndQuery)}$`),
    fault: {
      type: 'status',
      status: 200,
      headers: { 'content-type': 'application/json', ...(next === undefined ? {} : { link: `<${next}>; rel="next"` }) },
      body: JSON.stringify({ name: 'team/app', tags }),
    },
    times,
  });
}

function tagRequests(): string[] {
  return proxy.requests.filter((request) => request.path.startsWith(TAGS_PATH)).map((request) => request.path);
}

describe('listTags', () => {
  it('lists every tag of the registry exactly once', async () => {
    const tags = await listTags(app);
    expect(tags).toHaveLength(TAG_COUNT);
    expect(new Set(tags).size).toBe(TAG_COUNT);
    expect([...tags].sort()).toEqual(expectedTags());
  });

  it('asks for pages of 1000 tags by default: one request here', async () => {
    proxy.requests.length = 0;
    expect([...(await listTags(viaProxy))].sort()).toEqual(expectedTags());
    expect(tagRequests()).toEqual([`${TAGS_PATH}?n=1000`]);
  });

  it('follows Link pages of the asked size and returns each tag once, in order', async () => {
    // distribution 2.8 ignores n and last and never sends Link: the proxy serves the registry's
    // own tag list in pages of 10, as a paginating registry would.
    const pages = [registryOrder.slice(0, 10), registryOrder.slice(10, 20), registryOrder.slice(20)];
    const second = `${TAGS_PATH}?last=${pages[0]!.at(-1)}&n=10`;
    const third = `${TAGS_PATH}?last=${pages[1]!.at(-1)}&n=10`;
    servePage(`${TAGS_PATH}?n=10`, pages[0]!, second);
    // An absolute Link on the same origin is fine too.
    servePage(second, pages[1]!, `${proxy.url}${third}`);
    servePage(third, pages[2]!);
    proxy.requests.length = 0;

    const tags = await listTags(viaProxy, undefined, { pageSize: 10 });
    expect(tags).toEqual(registryOrder);
    expect(new Set(tags).size).toBe(TAG_COUNT);
    expect(tagRequests()).toEqual([`${TAGS_PATH}?n=10`, second, third]);
  });

  it('ends with PROTOCOL when a Link points back to the page it came from', async () => {
    // Without the guard the fourth request would reach the registry and the listing would succeed.
    servePage(`${TAGS_PATH}?n=10`, ['a'], `${TAGS_PATH}?n=10`, 3);
    proxy.requests.length = 0;
    const error = await failure(listTags(viaProxy, undefined, { pageSize: 10 }));
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toMatch(new RegExp(`^list tags of ${escape(proxy.host)}/team/app: Link header points back`));
    expect(tagRequests()).toHaveLength(1);
  });

  it('ends with PROTOCOL when Links form a longer cycle', async () => {
    const second = `${TAGS_PATH}?last=b&n=10`;
    servePage(`${TAGS_PATH}?n=10`, ['a', 'b'], second, 3);
    servePage(second, ['c', 'd'], `${proxy.url}${TAGS_PATH}?n=10`, 3);
    proxy.requests.length = 0;
    expect((await failure(listTags(viaProxy, undefined, { pageSize: 10 }))).code).toBe('PROTOCOL');
    expect(tagRequests()).toEqual([`${TAGS_PATH}?n=10`, second]);
  });

  describe('with another server listening', () => {
    let other: Server;
    let otherHost: string;
    const seen: { url: string; authorization: string | undefined }[] = [];

    beforeAll(async () => {
      other = createServer((req, res) => {
        seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'team/app', tags: ['stolen'] }));
      });
      await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
      otherHost = `127.0.0.1:${(other.address() as AddressInfo).port}`;
    });

    afterAll(() => new Promise<void>((resolve) => other.close(() => resolve())));

    it('ends with PROTOCOL instead of following a Link to another origin', async () => {
      servePage(`${TAGS_PATH}?n=10`, ['a'], `http://${otherHost}${TAGS_PATH}?last=a&n=10`);
      const error = await failure(listTags(viaProxy, undefined, { pageSize: 10 }));
      expect(error.code).toBe('PROTOCOL');
      expect(error.message).toContain(`another origin (http://${otherHost})`);
      expect(seen).toEqual([]);
    });
  });

  it('fails with NOT_FOUND and NAME_UNKNOWN for a repository that does not exist', async () => {
    const error = await failure(listTags(new Repository(client, 'no/such-repo', ['pull'])));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.status).toBe(404);
    expect(error.message).toMatch(new RegExp(`^list tags of ${escape(registry.host)}/no/such-repo: 404 NAME_UNKNOWN`));
  });

  it('answers an empty list for "tags": null', async () => {
    proxy.addRule({ method: 'GET', path: /\/tags\/list/, fault: { type: 'status', status: 200, body: '{"name":"team/app","tags":null}' }, times: 1 });
    expect(await listTags(viaProxy)).toEqual([]);
  });

  it.each([
    ['a body that is not JSON', '<html>oops</html>', 'answer is not JSON'],
    ['a JSON null', 'null', 'answer is not a JSON object'],
    ['"tags" that is not a list', '{"tags":"v1"}', '"tags" is not a list'],
  ])('fails with PROTOCOL for %s', async (_name, body, problem) => {
    proxy.addRule({ method: 'GET', path: /\/tags\/list/, fault: { type: 'status', status: 200, body }, times: 1 });
    const error = await failure(listTags(viaProxy));
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toBe(`list tags of ${proxy.host}/team/app: ${problem}`);
  });

  it('fails with a transient NETWORK error when the connection drops mid-page', async () => {
    proxy.addRule({ method: 'GET', path: /\/tags\/list/, fault: { type: 'resetAfterBytes', bytes: 20 }, times: 1 });
    const error = await failure(listTags(viaProxy));
    expect(error.code).toBe('NETWORK');
    expect(error.transient).toBe(true);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses page size %s with INVALID_CONFIG', async (pageSize) => {
    expect((await failure(listTags(app, undefined, { pageSize }))).code).toBe('INVALID_CONFIG');
  });
});

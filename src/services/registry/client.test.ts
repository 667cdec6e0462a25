import { createServer as createTcpServer, connect as tcpConnect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../../../test/support/fault-proxy.js';
import type { FaultProxy } from '../../../test/support/fault-proxy.js';
import { DEFAULT_USER, startRegistry } from '../../../test/support/registry.js';
import type { RunningRegistry } from '../../../test/support/registry.js';
import type { Scope } from './auth.js';
import { RegistryClient } from './client.js';
import type { RegistryRequest } from './client.js';
import { failure } from '../../../test/support/failure.js';

const BAD_PASSWORD = 'not-the-Pa55word-xyz';

let plain: RunningRegistry;
let basic: RunningRegistry;
let token: RunningRegistry;
let proxy: FaultProxy;
let proxied: RegistryClient;
const opened: RegistryClient[] = [];

beforeAll(async () => {
  [plain, basic, token] = await Promise.all([startRegistry(), startRegistry({ auth: 'htpasswd' }), startRegistry({ auth: 'token' })]);
  proxy = await startFaultProxy(plain.host);
  proxied = await connect({ registry: proxy.host });
});

afterEach(() => proxy.clearRules());

afterAll(async () => {
  await Promise.all(opened.map((client) => client.close()));
  await proxy?.stop();
  await Promise.all([plain, basic, token].map((registry) => registry?.stop()));
});

async function connect(options: Parameters<typeof RegistryClient.connect>[0], signal?: AbortSignal): Promise<RegistryClient> {
  const client = await RegistryClient.connect(options, signal);
  opened.push(client);
  return client;
}

const pull = (repository: string): Scope[] => [{ repository, actions: ['pull'] }];

function tagsRequest(repository: string, extra: Partial<RegistryRequest> = {}): RegistryRequest {
  return { method: 'GET', url: `/v2/${repository}/tags/list`, scopes: pull(repository), what: `list tags of ${repository}`, ...extra };
}

/** Sends and reads the answer: status and the registry's first error code, if any. */
async function statusOf(client: RegistryClient, request: RegistryRequest): Promise<{ status: number; code: string | undefined }> {
  const response = await client.send(request);
  const text = await response.body.text();
  const code = text ? (JSON.parse(text) as { errors?: { code?: string }[] }).errors?.[0]?.code : undefined;
  return { status: response.statusCode, code };
}

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP forwarder that records, per connection, whether the client opened with a TLS handshake. */
async function startSniffer(targetHost: string): Promise<{ host: string; openings: ('tls' | 'plain')[]; stop(): Promise<void> }> {
  const target = new URL(`http://${targetHost}`);
  const openings: ('tls' | 'plain')[] = [];
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.once('data', (first: Buffer) => {
      // 0x16 is the TLS record type "handshake": a ClientHello.
      openings.push(first[0] === 0x16 ? 'tls' : 'plain');
      const upstream = tcpConnect(Number(target.port), target.hostname);
      sockets.add(upstream);
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
      upstream.write(first);
      socket.pipe(upstream).pipe(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    openings,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('RegistryClient.connect', () => {
  it('tries https first, then talks plain HTTP to a loopback registry', async () => {
    const sniffer = await startSniffer(plain.host);
    try {
      const client = await connect({ registry: sniffer.host });
      expect(client.baseUrl).toBe(`http://${sniffer.host}`);
      expect(sniffer.openings[0]).toBe('tls');
      expect(sniffer.openings.slice(1)).toContain('plain');
      // The pool keeps working over http after the fallback.
      expect(await statusOf(client, tagsRequest('nothing/here'))).toEqual({ status: 404, code: 'NAME_UNKNOWN' });
      expect(client.resolve('/v2/x/blobs/uploads/').href).toBe(`http://${sniffer.host}/v2/x/blobs/uploads/`);
    } finally {
      await sniffer.stop();
    }
  });

  it('fails with NETWORK "connection refused" when nothing listens, without an http retry hiding it', async () => {
    const registry = `127.0.0.1:${await freePort()}`;
    const error = await failure(connect({ registry }));
    expect(error.code).toBe('NETWORK');
    expect(error.transient).toBe(true);
    expect(error.message).toContain('connection refused');
    expect(error.message).toContain(registry);
  });

  it('fails with ABORTED when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await failure(connect({ registry: plain.host }, controller.signal));
    expect(error.code).toBe('ABORTED');
    expect(error.transient).toBe(false);
  });
});

describe('connections', () => {
  it('keeps them alive across HEADs and after one was dropped', async () => {
    const client = await connect({ registry: proxy.host });
    const head = async (tag: string): Promise<number> => {
      const response = await client.send({ method: 'HEAD', url: `/v2/keep/alive/manifests/${tag}`, scopes: pull('keep/alive'), what: 'HEAD manifest' });
      await response.body.dump();
      return response.statusCode;
    };
    expect(await head('warm')).toBe(404);
    proxy.addRule({ path: /\/tags\/list$/, times: 1, fault: { type: 'reset' } });
    expect((await failure(client.send(tagsRequest('keep/alive')))).code).toBe('NETWORK');
    const round = async (i: number): Promise<void> => {
      const answers = await Promise.all([head(`a${i}`), head(`b${i}`), statusOf(client, tagsRequest('keep/alive')).then((r) => r.status)]);
      expect(answers).toEqual([404, 404, 404]);
    };
    const before = proxy.connections;
    for (let i = 0; i < 20; i++) await round(i);
    // 60 requests, three at a time: a pool of a few connections, not one per HEAD (then 40).
    expect(proxy.connections - before).toBeLessThanOrEqual(8);
  });
});

describe('Basic auth (htpasswd registry)', () => {
  it('connects with good credentials and sends them on every request', async () => {
    const client = await connect({ registry: basic.host, credentials: DEFAULT_USER });
    // Authorised: the registry tells us the repository is unknown instead of asking for credentials.
    expect(await statusOf(client, tagsRequest('private/app'))).toEqual({ status: 404, code: 'NAME_UNKNOWN' });
    expect(await statusOf(client, tagsRequest('other/app'))).toEqual({ status: 404, code: 'NAME_UNKNOWN' });
  });

  it('refuses bad credentials with UNAUTHORIZED naming the registry, never the password', async () => {
    const error = await failure(connect({ registry: basic.host, credentials: { username: DEFAULT_USER.username, password: BAD_PASSWORD } }));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.status).toBe(401);
    expect(error.transient).toBe(false);
    expect(error.message).toContain(basic.host);
    expect(error.message).toMatch(/refused/);
    expect(error.message).not.toContain(BAD_PASSWORD);
    expect(error.message).not.toContain(Buffer.from(`${DEFAULT_USER.username}:${BAD_PASSWORD}`).toString('base64'));
  });

  it('says the registry needs credentials when none are configured', async () => {
    const error = await failure(connect({ registry: basic.host }));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.message).toContain(`${basic.host} needs credentials`);
  });
});

describe('Bearer auth (token registry)', () => {
  const requests = (): number => token.tokenRequests ?? Number.NaN;

  it('fetches one token per scope set and reuses it, also for concurrent requests', async () => {
    const before = requests();
    const client = await connect({ registry: token.host, credentials: DEFAULT_USER });
    // The unscoped ping learns the realm but needs no token.
    expect(requests()).toBe(before);

    for (let i = 0; i < 3; i++) {
      expect(await statusOf(client, tagsRequest('team/app'))).toEqual({ status: 404, code: 'NAME_UNKNOWN' });
    }
    expect(requests()).toBe(before + 1);

    const concurrent = await Promise.all(Array.from({ length: 5 }, () => statusOf(client, tagsRequest('team/other'))));
    expect(concurrent.map((answer) => answer.status)).toEqual([404, 404, 404, 404, 404]);
    expect(requests()).toBe(before + 2);

    const pushScopes: Scope[] = [{ repository: 'team/app', actions: ['pull', 'push'] }];
    expect((await statusOf(client, tagsRequest('team/app', { scopes: pushScopes }))).status).toBe(404);
    expect(requests()).toBe(before + 3);

    // The first scope set's token is still cached.
    expect((await statusOf(client, tagsRequest('team/app'))).status).toBe(404);
    expect(requests()).toBe(before + 3);
  });

  it('refuses bad credentials at the token server with UNAUTHORIZED, and does not cache the failure', async () => {
    const client = await connect({ registry: token.host, credentials: { username: DEFAULT_USER.username, password: BAD_PASSWORD } });
    const before = requests();
    const error = await failure(client.send(tagsRequest('team/app')));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.message).toContain(token.host);
    expect(error.message).not.toContain(BAD_PASSWORD);
    expect(requests()).toBe(before + 1);

    expect((await failure(client.send(tagsRequest('team/app')))).code).toBe('UNAUTHORIZED');
    expect(requests()).toBe(before + 2);
  });

  it('answers UNAUTHORIZED for a scoped request without credentials', async () => {
    const client = await connect({ registry: token.host });
    const error = await failure(client.expect(tagsRequest('team/app'), [200]));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.status).toBe(401);
  });
});

describe('error mapping', () => {
  it('maps 404 to NOT_FOUND with the registry error code and the operation in the message', async () => {
    const client = await connect({ registry: plain.host });
    const error = await failure(
      client.expect({ method: 'GET', url: '/v2/missing/app/manifests/latest', scopes: pull('missing/app'), what: 'GET manifest missing/app:latest' }, [200]),
    );
    expect(error.code).toBe('NOT_FOUND');
    expect(error.status).toBe(404);
    expect(error.transient).toBe(false);
    expect(error.message).toMatch(/^GET manifest missing\/app:latest: 404 /);
    expect(error.message).toContain('MANIFEST_UNKNOWN');
  });

  it('maps a 503 to a transient SERVER_ERROR, with the body in the message', async () => {
    proxy.addRule({ path: /\/tags\/list/, fault: { type: 'status', status: 503, body: 'backend is down\nsecond line' }, times: 1 });
    const error = await failure(proxied.expect(tagsRequest('some/app'), [200]));
    expect(error.code).toBe('SERVER_ERROR');
    expect(error.transient).toBe(true);
    expect(error.status).toBe(503);
    expect(error.message).toBe('list tags of some/app: 503 backend is down');
    // The rule is spent: the same request reaches the registry again.
    expect(await statusOf(proxied, tagsRequest('some/app'))).toEqual({ status: 404, code: 'NAME_UNKNOWN' });
  });

  it('maps a 401 without a usable challenge to UNAUTHORIZED with the registry\'s words', async () => {
    proxy.addRule({ path: /\/tags\/list/, fault: { type: 'status', status: 401, body: '{"errors":[{"code":"UNAUTHORIZED","message":"go away"}]}' }, times: 1 });
    const error = await failure(proxied.expect(tagsRequest('some/app'), [200]));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.message).toBe('list tags of some/app: 401 UNAUTHORIZED: go away');
  });

  it('keeps every error code of a distribution error body', async () => {
    const body = JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'read only' }, { code: 'DENIED' }] });
    proxy.addRule({ path: /\/tags\/list/, fault: { type: 'status', status: 503, headers: { 'content-type': 'application/json' }, body }, times: 1 });
    const error = await failure(proxied.expect(tagsRequest('some/app'), [200]));
    expect(error.code).toBe('SERVER_ERROR');
    expect(error.message).toBe('list tags of some/app: 503 UNAVAILABLE: read only; DENIED');
  });

  it('maps 429 with Retry-After seconds to a transient TOO_MANY_REQUESTS', async () => {
    proxy.addRule({ path: /\/tags\/list/, fault: { type: 'status', status: 429, headers: { 'retry-after': '7' } }, times: 1 });
    const error = await failure(proxied.expect(tagsRequest('some/app'), [200]));
    expect(error.code).toBe('TOO_MANY_REQUESTS');
    expect(error.transient).toBe(true);
    expect(error.status).toBe(429);
    expect(error.retryAfterSeconds).toBe(7);
  });

  it('reads a Retry-After HTTP date as seconds from now', async () => {
    const date = new Date(Date.now() + 30_000).toUTCString();
    proxy.addRule({ path: /\/tags\/list/, fault: { type: 'status', status: 429, headers: { 'retry-after': date } }, times: 1 });
    const error = await failure(proxied.expect(tagsRequest('some/app'), [200]));
    expect(error.code).toBe('TOO_MANY_REQUESTS');
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(28);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(31);
  });

  it('maps a reset connection to a transient NETWORK error', async () => {
    proxy.addRule({ path: /\/tags\/list/, fault: { type: 'reset' }, times: 1 });
    const error = await failure(proxied.send(tagsRequest('some/app')));
    expect(error.code).toBe('NETWORK');
    expect(error.transient).toBe(true);
    expect(error.message).toMatch(/^list tags of some\/app: /);
  });

  it('maps a registry that went away to a transient NETWORK error', async () => {
    const doomed = await startRegistry();
    const client = await connect({ registry: doomed.host });
    await doomed.stop();
    const error = await failure(client.send(tagsRequest('some/app')));
    expect(error.code).toBe('NETWORK');
    expect(error.transient).toBe(true);
    // Refused for a new connection; "lost" if the pool still tried its kept-alive socket.
    expect(error.message).toMatch(/^list tags of some\/app: connection (refused|lost) \(/);
  });
});

describe('cancellation', () => {
  const hold = () => proxy.hold({ path: /\/held\// });

  it('fails with ABORTED, not transient, when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await failure(proxied.send(tagsRequest('some/app', { signal: controller.signal })));
    expect(error.code).toBe('ABORTED');
    expect(error.transient).toBe(false);
    expect(error.message).toBe('list tags of some/app: aborted');
  });

  it('fails with ABORTED when the signal aborts while the registry has not answered', async () => {
    const { release, arrived } = hold();
    try {
      const controller = new AbortController();
      const pending = failure(proxied.send(tagsRequest('held/app', { signal: controller.signal })));
      await arrived;
      controller.abort();
      const error = await pending;
      expect(error.code).toBe('ABORTED');
      expect(error.transient).toBe(false);
    } finally {
      release();
    }
  });

  it('fails with a transient TIMEOUT when a timeout signal fires', async () => {
    const { release } = hold();
    try {
      const error = await failure(proxied.send(tagsRequest('held/app', { signal: AbortSignal.timeout(100) })));
      expect(error.code).toBe('TIMEOUT');
      expect(error.transient).toBe(true);
      expect(error.message).toBe('list tags of held/app: timed out');
    } finally {
      release();
    }
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startFaultProxy } from '../../../test/support/fault-proxy.js';
import type { FaultProxy } from '../../../test/support/fault-proxy.js';
import { DEFAULT_USER, startRegistry } from '../../../test/support/registry.js';
import type { RunningRegistry } from '../../../test/support/registry.js';
import { Authenticator, scopeString } from './auth.js';
import type { Scope, TokenRequest, TokenResponse } from './auth.js';
import type { Credentials } from './credentials.js';
import { RegistryError } from './errors.js';
import { parseWwwAuthenticate } from './www-authenticate.js';
import { failure } from '../../../test/support/failure.js';

const BAD: Credentials = { username: DEFAULT_USER.username, password: 'wrong-Pa55-for-auth-test' };
const PULL: Scope[] = [{ repository: 'team/app', actions: ['pull'] }];
const PUSH: Scope[] = [{ repository: 'team/app', actions: ['pull', 'push'] }];
/** The identity token the token registry's token server takes for DEFAULT_USER. */
const REFRESH_TOKEN = 'S3CRET-refresh-token-for-auth-test';

let token: RunningRegistry;
let basic: RunningRegistry;
let tokenProxy: FaultProxy;
/** The token registry's challenge for pulling team/app, exactly as it sends it. */
let pullChallenge: string;
/** The same challenge with the realm moved behind the fault proxy. */
let proxiedChallenge: string;

beforeAll(async () => {
  [token, basic] = await Promise.all([startRegistry({ auth: 'token', refreshToken: REFRESH_TOKEN }), startRegistry({ auth: 'htpasswd' })]);
  pullChallenge = await challengeFor(token, 'GET', '/v2/team/app/tags/list');
  const realm = parseWwwAuthenticate(pullChallenge)[0]?.params.realm ?? '';
  tokenProxy = await startFaultProxy(new URL(realm).host);
  proxiedChallenge = pullChallenge.replace(realm, `${tokenProxy.url}/token`);
});

afterEach(() => tokenProxy.clearRules());

afterAll(async () => {
  await tokenProxy?.stop();
  await Promise.all([token?.stop(), basic?.stop()]);
});

async function challengeFor(registry: RunningRegistry, method: string, path: string): Promise<string> {
  const response = await fetch(`${registry.url}${path}`, { method });
  await response.body?.cancel();
  expect(response.status).toBe(401);
  return response.headers.get('www-authenticate') ?? '';
}

/** Asks the token server over real HTTP, as RegistryClient does, and records every request. */
function tokenFetcher(): { requestToken: (request: TokenRequest) => Promise<TokenResponse>; urls: URL[]; basics: Array<string | undefined>; rewrite?: (body: unknown) => unknown } {
  const state: { requestToken: (request: TokenRequest) => Promise<TokenResponse>; urls: URL[]; basics: Array<string | undefined>; rewrite?: (body: unknown) => unknown } = {
    urls: [],
    basics: [],
    requestToken: async ({ url, basic: authorization, form }) => {
      state.urls.push(url);
      state.basics.push(authorization);
      const response = await fetch(url, {
        headers: { ...(authorization ? { authorization } : {}), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        ...(form ? { method: 'POST', body: form.toString() } : {}),
      });
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: response.status, body: state.rewrite ? state.rewrite(body) : body };
    },
  };
  return state;
}

/** What the registry answers with this Authorization header. */
async function statusWith(registry: RunningRegistry, path: string, authorization: string | undefined): Promise<number> {
  const response = await fetch(`${registry.url}${path}`, { headers: authorization ? { authorization } : {} });
  await response.body?.cancel();
  return response.status;
}

function claims(header: string | undefined): { access: { type: string; name: string; actions: string[] }[]; sub: string } {
  const jwt = header?.replace(/^Bearer /, '') ?? '';
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as ReturnType<typeof claims>;
}

describe('scopeString', () => {
  it('renders the token-spec scope', () => {
    expect(scopeString({ repository: 'team/app', actions: ['pull', 'push'] })).toBe('repository:team/app:pull,push');
  });
});

describe('Authenticator before any challenge', () => {
  it('sends no Authorization and has scheme none', async () => {
    const auth = new Authenticator('r.example', DEFAULT_USER, tokenFetcher().requestToken);
    expect(auth.scheme).toBe('none');
    expect(await auth.header(PULL)).toBeUndefined();
  });

  it('does not retry a 401 without a usable challenge', () => {
    const auth = new Authenticator('r.example', DEFAULT_USER, tokenFetcher().requestToken);
    expect(auth.challenge(undefined, PULL)).toBe(false);
    expect(auth.challenge('Negotiate abc', PULL)).toBe(false);
    expect(auth.scheme).toBe('none');
  });
});

describe('Basic', () => {
  it("switches to Basic on the registry's challenge, with a header the registry accepts", async () => {
    const challenge = await challengeFor(basic, 'GET', '/v2/');
    const auth = new Authenticator(basic.host, DEFAULT_USER, tokenFetcher().requestToken);
    expect(auth.challenge(challenge, [])).toBe(true);
    expect(auth.scheme).toBe('basic');
    const header = await auth.header(PULL);
    expect(header).toBe(`Basic ${Buffer.from(`${DEFAULT_USER.username}:${DEFAULT_USER.password}`).toString('base64')}`);
    expect(await statusWith(basic, '/v2/', header)).toBe(200);
    // Basic goes on every request, scoped or not.
    expect(await auth.header([])).toBe(header);
  });

  it('does not retry once the same credentials were refused', async () => {
    const challenge = await challengeFor(basic, 'GET', '/v2/');
    const auth = new Authenticator(basic.host, BAD, tokenFetcher().requestToken);
    expect(auth.challenge(challenge, [])).toBe(true);
    expect(await statusWith(basic, '/v2/', await auth.header([]))).toBe(401);
    expect(auth.challenge(challenge, [])).toBe(false);
  });

  it('does not retry without credentials', async () => {
    const auth = new Authenticator(basic.host, undefined, tokenFetcher().requestToken);
    expect(auth.challenge(await challengeFor(basic, 'GET', '/v2/'), [])).toBe(false);
    expect(await auth.header([])).toBeUndefined();
  });
});

describe('Bearer', () => {
  it('learns the realm from the unscoped ping without fetching a token', async () => {
    const fetcher = tokenFetcher();
    const auth = new Authenticator(token.host, DEFAULT_USER, fetcher.requestToken);
    expect(auth.challenge(await challengeFor(token, 'GET', '/v2/'), [])).toBe(false);
    expect(auth.scheme).toBe('bearer');
    expect(await auth.header([])).toBeUndefined();
    expect(fetcher.urls).toEqual([]);
  });

  it('fetches a token for the scope set from the realm, with service and scope, and the registry accepts it', async () => {
    const fetcher = tokenFetcher();
    const auth = new Authenticator(token.host, DEFAULT_USER, fetcher.requestToken);
    expect(auth.challenge(pullChallenge, PULL)).toBe(true);
    const header = await auth.header(PULL);
    expect(fetcher.urls).toHaveLength(1);
    const url = fetcher.urls[0]!;
    expect(url.searchParams.get('service')).toBe('ferry-registry');
    expect(url.searchParams.getAll('scope')).toEqual(['repository:team/app:pull']);
    expect(claims(header)).toMatchObject({ sub: DEFAULT_USER.username, access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }] });
    // Authorised: the repository is simply unknown.
    expect(await statusWith(token, '/v2/team/app/tags/list', header)).toBe(404);
  });

  it('reuses the token per scope set and shares one fetch between concurrent callers', async () => {
    const fetcher = tokenFetcher();
    const auth = new Authenticator(token.host, DEFAULT_USER, fetcher.requestToken);
    auth.challenge(pullChallenge, PULL);
    const first = await auth.header(PULL);
    expect(await auth.header([{ repository: 'team/app', actions: ['pull'] }])).toBe(first);
    expect(fetcher.urls).toHaveLength(1);

    const concurrent = await Promise.all(Array.from({ length: 5 }, () => auth.header(PUSH)));
    expect(new Set(concurrent).size).toBe(1);
    expect(concurrent[0]).not.toBe(first);
    expect(fetcher.urls).toHaveLength(2);
    expect(fetcher.urls[1]?.searchParams.getAll('scope')).toEqual(['repository:team/app:pull,push']);
  });

  it('asks for every scope of a set, e.g. the source of a mount', async () => {
    const fetcher = tokenFetcher();
    const auth = new Authenticator(token.host, DEFAULT_USER, fetcher.requestToken);
    const mountScopes: Scope[] = [...PUSH, { repository: 'other/x', actions: ['pull'] }];
    const challenge = await challengeFor(token, 'POST', `/v2/team/app/blobs/uploads/?mount=sha256:${'a'.repeat(64)}&from=other/x`);
    expect(auth.challenge(challenge, mountScopes)).toBe(true);
    const header = await auth.header(mountScopes);
    expect(fetcher.urls[0]?.searchParams.getAll('scope')).toEqual(['repository:team/app:pull,push', 'repository:other/x:pull']);
    expect(claims(header).access.map((access) => `${access.name}:${access.actions.join(',')}`)).toEqual(['team/app:pull,push', 'other/x:pull']);
  });

  it('fetches a fresh token after a covered challenge (the token was refused)', async () => {
    const fetcher = tokenFetcher();
    const auth = new Authenticator(token.host, DEFAULT_USER, fetcher.requestToken);
    auth.challenge(pullChallenge, PULL);
    const first = await auth.header(PULL);
    expect(auth.challenge(pullChallenge, PULL)).toBe(true);
    const second = await auth.header(PULL);
    expect(fetcher.urls).toHaveLength(2);
    expect(second).not.toBe(first);
  });

  it('does not retry when the challenge wants an action the request did not ask for', async () => {
    const fetcher = tokenFetcher();
    const auth = new Authenticator(token.host, DEFAULT_USER, fetcher.requestToken);
    auth.challenge(pullChallenge, PUSH);
    const before = await auth.header(PUSH);
    // distribution asks for delete to cancel an upload session.
    const deleteChallenge = await challengeFor(token, 'DELETE', '/v2/team/app/blobs/uploads/some-session');
    expect(auth.challenge(deleteChallenge, PUSH)).toBe(false);
    // The cached token stays: it was not the problem.
    expect(await auth.header(PUSH)).toBe(before);
    expect(fetcher.urls).toHaveLength(1);
  });

  it.each<[string, number | undefined, number]>([
    ['15 s before expiry', 300, 285_000],
    ['at half its life when that is sooner', 10, 5_000],
    ['after the 60 s default, less the margin, without expires_in', undefined, 45_000],
  ])('refreshes a token %s', async (_name, expiresIn, refreshAfterMs) => {
    const fetcher = tokenFetcher();
    fetcher.rewrite = (body) => ({ ...(body as object), expires_in: expiresIn });
    const auth = new Authenticator(token.host, DEFAULT_USER, fetcher.requestToken);
    auth.challenge(pullChallenge, PULL);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const start = Date.now();
      const first = await auth.header(PULL);
      vi.setSystemTime(start + refreshAfterMs - 200);
      expect(await auth.header(PULL)).toBe(first);
      expect(fetcher.urls).toHaveLength(1);
      vi.setSystemTime(start + refreshAfterMs + 200);
      await auth.header(PULL);
      expect(fetcher.urls).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('accepts an answer with access_token only', async () => {
    const fetcher = tokenFetcher();
    fetcher.rewrite = (body) => ({ access_token: (body as { token: string }).token });
    const auth = new Authenticator(token.host, DEFAULT_USER, fetcher.requestToken);
    auth.challenge(pullChallenge, PULL);
    expect(await statusWith(token, '/v2/team/app/tags/list', await auth.header(PULL))).toBe(404);
  });

  it('fails with UNAUTHORIZED naming the registry, never the password, when the token server refuses', async () => {
    const fetcher = tokenFetcher();
    const auth = new Authenticator(token.host, BAD, fetcher.requestToken);
    auth.challenge(pullChallenge, PULL);
    const error = await failure(auth.header(PULL));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.status).toBe(401);
    expect(error.message).toContain(`credentials for ${token.host} were refused`);
    expect(error.message).toContain('repository:team/app:pull');
    expect(error.message).not.toContain(BAD.password);
    // A failure is not cached: the next request asks again.
    await failure(auth.header(PULL));
    expect(fetcher.urls).toHaveLength(2);
  });

  describe('with an identity token', () => {
    it('trades it for a token with the OAuth2 refresh-token POST, and the registry accepts the token', async () => {
      const fetcher = tokenFetcher();
      const auth = new Authenticator(token.host, { identityToken: REFRESH_TOKEN }, fetcher.requestToken);
      expect(auth.challenge(pullChallenge, PULL)).toBe(true);
      const before = token.tokenRefreshes!.length;
      const header = await auth.header(PUSH);
      expect(token.tokenRefreshes!.slice(before)).toStrictEqual([
        { grant_type: 'refresh_token', refresh_token: REFRESH_TOKEN, client_id: 'ferry', service: 'ferry-registry', scope: 'repository:team/app:pull,push' },
      ]);
      // No Basic credentials and nothing in the URL: the token travels in the body only.
      expect(fetcher.basics).toStrictEqual([undefined]);
      expect(fetcher.urls.map(String)).toStrictEqual([parseWwwAuthenticate(pullChallenge)[0]!.params.realm]);
      expect(claims(header)).toMatchObject({ sub: DEFAULT_USER.username, access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }] });
      expect(await statusWith(token, '/v2/team/app/tags/list', header)).toBe(404);
      // Cached per scope set, as tokens fetched with credentials are.
      expect(await auth.header(PUSH)).toBe(header);
      expect(token.tokenRefreshes!.length).toBe(before + 1);
    });

    it('fails with UNAUTHORIZED naming the registry, never the token, when the token server refuses it', async () => {
      const auth = new Authenticator(token.host, { identityToken: 'S3CRET-revoked-token' }, tokenFetcher().requestToken);
      auth.challenge(pullChallenge, PULL);
      const error = await failure(auth.header(PULL));
      expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
      expect(error.message).toContain(`the identity token for ${token.host} was refused`);
      expect(error.message).not.toContain('S3CRET');
    });

    it('refuses a Basic challenge, which an identity token cannot answer', async () => {
      const auth = new Authenticator(basic.host, { identityToken: REFRESH_TOKEN }, tokenFetcher().requestToken);
      const challenge = await challengeFor(basic, 'GET', '/v2/');
      const error = await failure(Promise.resolve().then(() => auth.challenge(challenge, [])));
      expect(error).toMatchObject({ code: 'UNAUTHORIZED', message: `${basic.host} asks for Basic authentication, which an identity token cannot give` });
      expect(await auth.header([])).toBeUndefined();
    });
  });

  it('throws PROTOCOL for a Bearer challenge without a realm', () => {
    const auth = new Authenticator('r.example', DEFAULT_USER, tokenFetcher().requestToken);
    expect(() => auth.challenge('Bearer service="x"', PULL)).toThrow(RegistryError);
    expect(() => auth.challenge('Bearer service="x"', PULL)).toThrow(/Bearer challenge without a realm/);
  });

  describe('token server failures (through the fault proxy)', () => {
    async function headerVia(rule: Parameters<FaultProxy['addRule']>[0]): Promise<RegistryError> {
      tokenProxy.addRule(rule);
      const auth = new Authenticator(token.host, DEFAULT_USER, tokenFetcher().requestToken);
      auth.challenge(proxiedChallenge, PULL);
      return failure(auth.header(PULL));
    }

    it('works through the proxy when there is no fault', async () => {
      const auth = new Authenticator(token.host, DEFAULT_USER, tokenFetcher().requestToken);
      auth.challenge(proxiedChallenge, PULL);
      expect(await statusWith(token, '/v2/team/app/tags/list', await auth.header(PULL))).toBe(404);
    });

    it('maps 503 to a transient SERVER_ERROR', async () => {
      const error = await headerVia({ path: /^\/token/, fault: { type: 'status', status: 503 }, times: 1 });
      expect(error.code).toBe('SERVER_ERROR');
      expect(error.transient).toBe(true);
    });

    it('maps 429 to a transient TOO_MANY_REQUESTS', async () => {
      const error = await headerVia({ path: /^\/token/, fault: { type: 'status', status: 429 }, times: 1 });
      expect(error.code).toBe('TOO_MANY_REQUESTS');
      expect(error.transient).toBe(true);
    });

    it('maps 403 to DENIED', async () => {
      expect((await headerVia({ path: /^\/token/, fault: { type: 'status', status: 403 }, times: 1 })).code).toBe('DENIED');
    });

    it('answers PROTOCOL for a 200 without a token', async () => {
      const error = await headerVia({ path: /^\/token/, fault: { type: 'status', status: 200, body: '{"expires_in": 300}' }, times: 1 });
      expect(error.code).toBe('PROTOCOL');
      expect(error.message).toContain('answer has no token');
    });

    it('answers PROTOCOL for an unexpected status', async () => {
      const error = await headerVia({ path: /^\/token/, fault: { type: 'status', status: 204 }, times: 1 });
      expect(error.code).toBe('PROTOCOL');
      expect(error.message).toContain('unexpected status 204');
    });
  });
});

import { RegistryError } from './errors.js';
import { parseWwwAuthenticate, type Challenge } from './www-authenticate.js';
import type { Credentials, Login } from './credentials.js';

/** `delete` only for deleting manifests: distribution's token auth asks for it; `*` for the catalog. */
export type Action = 'pull' | 'push' | 'delete' | '*';

/** A token-spec resource and the actions wanted on it: a repository, or the catalog (`registry:catalog:*`). */
export type Scope = { repository: string; actions: Action[] } | { registry: 'catalog'; actions: Action[] };

/** A GET with Basic credentials (or none), or an OAuth2 POST of `form` (https://distribution.github.io/distribution/spec/auth/oauth). */
export interface TokenRequest {
  url: URL;
  basic: string | undefined;
  form?: URLSearchParams;
}

export interface TokenResponse {
  status: number;
  body: unknown;
}

interface CachedToken {
  token: string;
  /** When to stop using it: before it expires, so no request starts with a dying token. */
  refreshAt: number;
}

/** distribution's token server default when the answer has no expires_in. */
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** Refresh a token this long before it expires, or at half its life if that is shorter. */
const EXPIRY_MARGIN_MS = 15_000;
/** The OAuth2 client_id the token spec asks for: any name, for the token server's audit. */
const CLIENT_ID = 'ferry';

/**
 * Whether the scope a challenge asks for is within what the request asked for. When it is
 * not (distribution wants `delete` to cancel an upload), a new token would not help.
 */
function covers(scopes: Scope[], wanted: string | undefined): boolean {
  if (!wanted) return true;
  return wanted.split(' ').every((item) => {
    const match = /^((?:repository|registry):[^:]+):([\w*,]+)$/.exec(item);
    if (!match) return false;
    const granted = new Set<string>(scopes.filter((s) => resource(s) === match[1]).flatMap((s) => s.actions));
    return match[2]!.split(',').every((action) => granted.has(action));
  });
}

function resource(scope: Scope): string {
  return 'registry' in scope ? `registry:${scope.registry}` : `repository:${scope.repository}`;
}

export function scopeString(scope: Scope): string {
  return `${resource(scope)}:${scope.actions.join(',')}`;
}

/**
 * Decides the Authorization header for a registry. The scheme is learnt from the first
 * challenge (usually the ping); Bearer tokens are cached per scope set and shared by
 * concurrent requests, so a token fetch is not tied to one caller's AbortSignal: one job's
 * STOP must not fail another job waiting for the same token.
 */
export class Authenticator {
  readonly #registry: string;
  readonly #credentials: Credentials | undefined;
  readonly #identityToken: string | undefined;
  readonly #requestToken: (request: TokenRequest) => Promise<TokenResponse>;
  #scheme: 'none' | 'basic' | 'bearer' = 'none';
  #bearer: { realm: string; service: string | undefined } | undefined;
  readonly #tokens = new Map<string, Promise<CachedToken>>();

  constructor(registry: string, login: Login | undefined, requestToken: (request: TokenRequest) => Promise<TokenResponse>) {
    this.#registry = registry;
    if (login && 'identityToken' in login) this.#identityToken = login.identityToken;
    else this.#credentials = login;
    this.#requestToken = requestToken;
  }

  get scheme(): 'none' | 'basic' | 'bearer' {
    return this.#scheme;
  }

  async header(scopes: Scope[]): Promise<string | undefined> {
    if (this.#scheme === 'basic') return this.#basic();
    if (this.#scheme === 'bearer' && scopes.length > 0) return `Bearer ${await this.#token(scopes)}`;
    return undefined;
  }

  /**
   * Takes a 401's challenge. Returns true when one retry can succeed with what was learnt,
   * false when the same credentials were already refused or there is nothing to retry with.
   */
  challenge(header: string | undefined, scopes: Scope[]): boolean {
    const challenges = header ? parseWwwAuthenticate(header) : [];
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) return this.#takeBearer(bearer, scopes);
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (this.#identityToken !== undefined) {
        throw new RegistryError('UNAUTHORIZED', `${this.#registry} asks for Basic authentication, which an identity token cannot give`);
      }
      if (this.#scheme === 'basic' || !this.#credentials) return false;
      this.#scheme = 'basic';
      return true;
    }
    return false;
  }

  #takeBearer(challenge: Challenge, scopes: Scope[]): boolean {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError('PROTOCOL', `${this.#registry}: Bearer challenge without a realm`);
    this.#scheme = 'bearer';
    this.#bearer = { realm, service: challenge.params.service };
    if (scopes.length === 0 || !covers(scopes, challenge.params.scope)) return false;
    // The token we sent may have expired early or been revoked: the retry fetches a fresh one.
    this.#tokens.delete(scopes.map(scopeString).join(' '));
    return true;
  }

  async #token(scopes: Scope[]): Promise<string> {
    const key = scopes.map(scopeString).join(' ');
    const cached = this.#tokens.get(key);
    if (cached) {
      const token = await cached;
      if (token.refreshAt > Date.now()) return token.token;
      if (this.#tokens.get(key) === cached) this.#tokens.delete(key);
      return this.#token(scopes);
    }
    const pending = this.#fetchToken(scopes);
    this.#tokens.set(key, pending);
    pending.catch(() => this.#tokens.get(key) === pending && this.#tokens.delete(key));
    return (await pending).token;
  }

  async #fetchToken(scopes: Scope[]): Promise<CachedToken> {
    const bearer = this.#bearer;
    if (!bearer) throw new RegistryError('PROTOCOL', `${this.#registry}: no Bearer realm known`);
    const url = new URL(bearer.realm);
    const request = this.#identityToken === undefined ? this.#getRequest(url, bearer.service, scopes) : this.#refreshRequest(url, bearer.service, scopes, this.#identityToken);
    const { status, body } = await this.#requestToken(request);
    const what = `token for ${scopes.map(scopeString).join(' ')} from ${url.origin}${url.pathname}`;
    if (status === 401 || status === 403) {
      const refused = this.#identityToken !== undefined ? `the identity token for ${this.#registry} was refused`
        : this.#credentials ? `credentials for ${this.#registry} were refused`
        : `${this.#registry} needs credentials`;
      throw new RegistryError(status === 401 ? 'UNAUTHORIZED' : 'DENIED', `${what}: ${status}: ${refused}`, { status });
    }
    if (status === 429 || status >= 500) {
      throw new RegistryError(status === 429 ? 'TOO_MANY_REQUESTS' : 'SERVER_ERROR', `${what}: ${status}`, { status });
    }
    if (status !== 200) throw new RegistryError('PROTOCOL', `${what}: unexpected status ${status}`, { status });
    const answer = body as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof answer.token === 'string' ? answer.token : answer.access_token;
    if (typeof token !== 'string' || token === '') throw new RegistryError('PROTOCOL', `${what}: answer has no token`);
    const lifetime = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    return { token, refreshAt: Date.now() + lifetime * 1000 - Math.min(EXPIRY_MARGIN_MS, (lifetime * 1000) / 2) };
  }

  #getRequest(url: URL, service: string | undefined, scopes: Scope[]): TokenRequest {
    if (service) url.searchParams.set('service', service);
    for (const scope of scopes) url.searchParams.append('scope', scopeString(scope));
    return { url, basic: this.#credentials && this.#basic() };
  }

  /** The OAuth2 refresh-token grant: one space-separated `scope`, as the spec's example has it. */
  #refreshRequest(url: URL, service: string | undefined, scopes: Scope[], refreshToken: string): TokenRequest {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: CLIENT_ID });
    if (service) form.set('service', service);
    form.set('scope', scopes.map(scopeString).join(' '));
    return { url, basic: undefined, form };
  }

  #basic(): string {
    const { username, password } = this.#credentials!;
    return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }
}

import type { Dispatcher } from 'undici';
import { undici } from './undici-parts.js';
import { Authenticator, type Scope } from './auth.js';
import { RegistryConnections } from './connections.js';
import { RegistryError, type ErrorCode } from './errors.js';
import type { RegistryLimiter } from './limiter.js';
import { parseRetryAfter } from './rate-limit-headers.js';
import { isLoopbackRegistry, registryEndpointHost } from './reference.js';
import type { Login } from './credentials.js';

export interface RegistryOptions {
  /** As written in references: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  registry: string;
  credentials?: Login;
  /** Skip TLS verification and allow plain HTTP (Docker's "insecure registry"). */
  insecure?: boolean;
  /** PEM bundle to trust in addition to the system CAs. */
  ca?: string;
  /** Connections per origin; requests beyond it queue in the pool. */
  connections?: number;
  userAgent?: string;
  /** The ceiling of the registry's limiter (`Registries` applies it); none when left out. */
  requestsPerSecond?: number;
  /** Told of every request sent, answered or not (metrics). */
  onRequest?: (sample: RequestSample) => void;
  /** Every request waits for the registry's budget, shared with every client of it; without one, requests go at once. */
  limiter?: RegistryLimiter;
}

/** One request as sent: `status` undefined when no answer came. Names the registry, never the credentials. */
export interface RequestSample {
  registry: string;
  method: string;
  status: number | undefined;
  seconds: number;
}

export type Body = Dispatcher.DispatchOptions['body'];

export interface RegistryRequest {
  method: Dispatcher.HttpMethod;
  /** A path on the registry (`/v2/...`) or an absolute URL (upload Locations). */
  url: string | URL;
  scopes: Scope[];
  headers?: Record<string, string>;
  /** A body that is not a Buffer or string cannot be replayed after a 401: warm auth up first. */
  body?: Body;
  signal?: AbortSignal;
  /** Names the operation and reference in every error: `HEAD manifest host/repo:tag`. */
  what: string;
}

export type RegistryResponse = Dispatcher.ResponseData;

const TLS_FALLBACK_CODES = new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ECONNRESET']);
/** 429s one request waits out before the last one goes back to its caller. */
const MAX_REFUSALS = 5;

/**
 * One registry, one keep-alive pool: requests with auth, and failures turned into
 * RegistryErrors that say what failed. Create with `RegistryClient.connect`, which pings
 * `/v2/` to learn the scheme (https, or http for insecure and loopback registries) and auth.
 */
export class RegistryClient {
  readonly registry: string;
  readonly #connections: RegistryConnections;
  readonly #auth: Authenticator;
  readonly #userAgent: string;
  readonly #limiter: RegistryLimiter | undefined;
  readonly #onRequest: ((sample: RequestSample) => void) | undefined;
  #base: URL;

  private constructor(options: RegistryOptions, base: URL) {
    this.registry = options.registry;
    this.#base = base;
    this.#userAgent = options.userAgent ?? 'ferry';
    this.#limiter = options.limiter;
    this.#onRequest = options.onRequest;
    this.#connections = new RegistryConnections(base.host, {
      connections: options.connections ?? 32,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
      connect: {
        ...(options.ca ? { ca: options.ca } : {}),
        rejectUnauthorized: !options.insecure,
      },
    });
    this.#auth = new Authenticator(options.registry, options.credentials, async ({ url, basic, form }) => {
      const post = form && { method: 'POST' as const, body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
      const response = await this.#dispatch(
        { method: 'GET', url, scopes: [], what: `token request to ${url.origin}`, signal: AbortSignal.timeout(30_000), ...post },
        basic,
      );
      const text = await response.body.text();
      let body: unknown = undefined;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: response.statusCode, body };
    });
  }

  static async connect(options: RegistryOptions, signal?: AbortSignal): Promise<RegistryClient> {
    const host = registryEndpointHost(options.registry);
    const plainAllowed = options.insecure === true || isLoopbackRegistry(options.registry);
    const client = new RegistryClient(options, new URL(`https://${host}`));
    try {
      await client.ping(signal);
    } catch (error) {
      if (!plainAllowed || !isTlsHandshakeFailure(error)) {
        await client.close();
        throw error;
      }
      client.#base = new URL(`http://${host}`);
      try {
        await client.ping(signal);
      } catch (plainError) {
        await client.close();
        throw plainError;
      }
    }
    return client;
  }

  get baseUrl(): string {
    return this.#base.origin;
  }

  /** `GET /v2/`: 200, or 401 with a challenge the authenticator learns from. */
  async ping(signal?: AbortSignal): Promise<void> {
    const what = `ping ${this.registry}`;
    const response = await this.send({ method: 'GET', url: '/v2/', scopes: [], what, ...(signal ? { signal } : {}) });
    await response.body.dump();
    if (response.statusCode === 200) return;
    // A Bearer registry answers the unscoped ping with 401; tokens come per repository later.
    if (response.statusCode === 401 && this.#auth.scheme === 'bearer') return;
    const detail = response.statusCode !== 401 ? undefined
      : this.#auth.scheme === 'basic' ? `credentials for ${this.registry} were refused`
      : `${this.registry} needs credentials`;
    throw statusError(response.statusCode, what, undefined, detail);
  }

  /**
   * Sends a request with auth, within the registry's budget; answers any status, so callers
   * decide what 404 means. With a limiter, a 429 waits out the pause it set for every job and
   * goes again: handed back, it would fail the caller's phase, whose retry waits on a timer of
   * its own and comes back with every other job's.
   */
  async send(request: RegistryRequest): Promise<RegistryResponse> {
    for (let refusals = 1; ; refusals++) {
      const response = await this.#authorized(request);
      if (response.statusCode !== 429 || !this.#limiter || !isReplayable(request.body) || refusals === MAX_REFUSALS) return response;
      await response.body.dump();
    }
  }

  async #authorized(request: RegistryRequest): Promise<RegistryResponse> {
    const response = await this.#limited(request, await this.#auth.header(request.scopes));
    if (response.statusCode !== 401 || !isReplayable(request.body)) return response;
    // Unanswerable, the 401 goes back to the caller with its body, which names the error.
    if (!this.#auth.challenge(header(response, 'www-authenticate'), request.scopes)) return response;
    await response.body.dump();
    return this.#limited(request, await this.#auth.header(request.scopes));
  }

  async #limited(request: RegistryRequest, authorization: string | undefined): Promise<RegistryResponse> {
    if (!this.#limiter) return this.#dispatch(request, authorization);
    // Docker Hub counts manifest GETs against its pull budget, not HEADs nor blobs.
    const pull = request.method === 'GET' && /\/manifests\/[^/]+$/.test(this.resolve(request.url).pathname);
    const pass = await this.#limiter.admit(pull, request.signal, request.what);
    try {
      const response = await this.#dispatch(request, authorization);
      pass.answered(response.statusCode, response.headers);
      return response;
    } catch (error) {
      pass.failed();
      throw error;
    }
  }

  /** Sends and fails with a RegistryError unless the status is one of `ok`. */
  async expect(request: RegistryRequest, ok: number[]): Promise<RegistryResponse> {
    const response = await this.send(request);
    if (ok.includes(response.statusCode)) return response;
    throw await responseError(response, request.what);
  }

  resolve(url: string | URL): URL {
    return new URL(url, this.#base);
  }

  async close(): Promise<void> {
    await this.#connections.close();
  }

  async #dispatch(request: RegistryRequest, authorization?: string): Promise<RegistryResponse> {
    const url = this.resolve(request.url);
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...request.headers };
    if (authorization) headers.authorization = authorization;
    const started = performance.now();
    let status: number | undefined;
    try {
      const response = await undici.request.call(this.#connections.dispatcher, {
        origin: url.origin,
        path: url.pathname + url.search,
        method: request.method,
        // undici closes the connection after a HEAD in case the server sends a body anyway;
        // registries answer HEAD as HTTP says, and existence checks are most of a sync.
        ...(request.method === 'HEAD' ? { reset: false } : {}),
        headers,
        body: request.body ?? null,
        signal: request.signal ?? null,
      });
      status = response.statusCode;
      return response;
    } catch (error) {
      throw networkError(error, request.what, request.signal);
    } finally {
      this.#onRequest?.({ registry: this.registry, method: request.method, status, seconds: (performance.now() - started) / 1000 });
    }
  }
}

function isReplayable(body: Body | undefined): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

export function header(response: RegistryResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

interface DistributionError {
  code?: string;
  message?: string;
}

/** Reads the error body (distribution's `{"errors":[{code,message}]}`) into a RegistryError. */
export async function responseError(response: RegistryResponse, what: string): Promise<RegistryError> {
  let detail: string | undefined;
  let registryCode: string | undefined;
  try {
    const text = (await response.body.text()).slice(0, 4096);
    try {
      const errors = (JSON.parse(text) as { errors?: DistributionError[] }).errors;
      const first = errors?.[0];
      registryCode = first?.code;
      detail = errors?.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    } catch {
      detail = text.trim().split('\n')[0];
    }
  } catch {
    detail = undefined;
  }
  const retryAfter = parseRetryAfter(header(response, 'retry-after'));
  return statusError(response.statusCode, what, registryCode, detail || undefined, retryAfter);
}

function statusError(
  status: number,
  what: string,
  registryCode: string | undefined,
  detail: string | undefined,
  retryAfterSeconds?: number,
): RegistryError {
  const code = errorCode(status, registryCode);
  const message = `${what}: ${status}${detail ? ` ${detail}` : ''}`;
  return new RegistryError(code, message, { status, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) });
}

function errorCode(status: number, registryCode: string | undefined): ErrorCode {
  if (registryCode === 'DIGEST_INVALID') return 'DIGEST_MISMATCH';
  if (registryCode === 'MANIFEST_INVALID' || registryCode === 'MANIFEST_BLOB_UNKNOWN') return 'INVALID_MANIFEST';
  if (registryCode === 'SIZE_INVALID') return 'SIZE_MISMATCH';
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 408) return 'TIMEOUT';
  if (status === 429) return 'TOO_MANY_REQUESTS';
  if (status >= 500) return 'SERVER_ERROR';
  return 'PROTOCOL';
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN',
  'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export function networkError(error: unknown, what: string, signal?: AbortSignal | null): RegistryError {
  if (error instanceof RegistryError) return error;
  if (signal?.aborted) {
    const timedOut = (signal.reason as Error | undefined)?.name === 'TimeoutError';
    return new RegistryError(timedOut ? 'TIMEOUT' : 'ABORTED', `${what}: ${timedOut ? 'timed out' : 'aborted'}`, { cause: error });
  }
  const code = errnoCode(error);
  if (code && TIMEOUT_CODES.has(code)) return new RegistryError('TIMEOUT', `${what}: timed out (${code})`, { cause: error });
  if (code && NETWORK_CODES.has(code)) {
    return new RegistryError('NETWORK', `${what}: ${describeNetworkCode(code)} (${code})`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  if (code && (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL') || code === 'EPROTO')) {
    return new RegistryError('TLS', `${what}: TLS failed: ${message} (${code})`, { cause: error });
  }
  if (error instanceof Error && error.name === 'AbortError') return new RegistryError('ABORTED', `${what}: aborted`, { cause: error });
  return new RegistryError('NETWORK', `${what}: ${message}${code ? ` (${code})` : ''}`, { cause: error });
}

function describeNetworkCode(code: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not resolved';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENETDOWN':
      return 'host unreachable';
    default:
      return 'connection lost';
  }
}

function errnoCode(error: unknown): string | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function isTlsHandshakeFailure(error: unknown): boolean {
  if (!(error instanceof RegistryError) || (error.code !== 'TLS' && error.code !== 'NETWORK')) return false;
  const code = errnoCode(error.cause);
  return code !== undefined && (TLS_FALLBACK_CODES.has(code) || code.startsWith('ERR_SSL'));
}

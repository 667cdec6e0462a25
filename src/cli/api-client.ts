import { request } from 'undici';
import { UsageError } from './usage.js';

/** A failure the server reported: exit code 1 with its message. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
}

type Method = 'GET' | 'POST' | 'DELETE';

/** The most a page of the API holds. */
const PAGE = 1000;

/** The service's REST API, as the remote commands use it. */
export class Api {
  readonly #base: string;
  readonly #token: string | undefined;

  constructor(server: string, token: string | undefined) {
    this.#base = `${server.replace(/\/$/, '')}/api/v1`;
    this.#token = token;
  }

  get<T>(path: string): Promise<T> {
    return this.#call<T>('GET', path);
  }

  post<T = unknown>(path: string, body: object = {}): Promise<T> {
    return this.#call<T>('POST', path, body);
  }

  delete(path: string): Promise<unknown> {
    return this.#call('DELETE', path);
  }

  /** Every item of a listing, whether it answers an array or pages (`{items, total}`). */
  async all<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    for (;;) {
      const separator = path.includes('?') ? '&' : '?';
      const answer = await this.get<T[] | { items: T[]; total: number }>(`${path}${separator}limit=${PAGE}&offset=${items.length}`);
      if (Array.isArray(answer)) return answer;
      items.push(...answer.items);
      if (answer.items.length === 0 || items.length >= answer.total) return items;
    }
  }

  async #call<T>(method: Method, path: string, body?: object): Promise<T> {
    const headers: Record<string, string> = this.#token ? { authorization: `Bearer ${this.#token}` } : {};
    if (body) headers['content-type'] = 'application/json';
    let response;
    try {
      response = await request(`${this.#base}${path}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
    } catch (error) {
      throw new RemoteError(`cannot reach ferry at ${this.#base}: ${(error as Error).message}`);
    }
    const answer = (await response.body.json().catch(() => undefined)) as { message?: string } | undefined;
    const message = `${method} ${path}: ${response.statusCode} ${answer?.message ?? ''}`.trim();
    // The service refused what the command line asked for: bad usage, not a failure.
    if (response.statusCode === 400) throw new UsageError(message);
    if (response.statusCode >= 400) throw new RemoteError(message);
    return answer as T;
  }
}

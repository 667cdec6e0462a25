import type { Scope } from './auth.js';
import { header, networkError, responseError, type RegistryClient, type RegistryResponse } from './client.js';
import { RegistryError } from './errors.js';
import { nextLink } from './link.js';

const PAGE_SIZE = 1000;

export interface PagedList {
  client: RegistryClient;
  /** The first page's path, without the `n` parameter: `/v2/team/app/tags/list`, `/v2/_catalog`. */
  path: string;
  /** The answer's field that holds the page's names. */
  field: 'tags' | 'repositories';
  scopes: Scope[];
  /** Names the listing in every error: `list tags of host/repo`. */
  what: string;
  signal?: AbortSignal;
  pageSize?: number;
}

/** Every name of a paginated list, following `Link: <...>; rel="next"` pages on the registry's own origin. */
export async function listPages({ client, path, field, scopes, what, signal, pageSize = PAGE_SIZE }: PagedList): Promise<string[]> {
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new RegistryError('INVALID_CONFIG', `${what}: page size ${pageSize} is not a positive integer`);
  const names: string[] = [];
  await followPages(client.resolve(`${path}?n=${pageSize}`), what, async (url) => {
    const response = await client.send({ method: 'GET', url, scopes, what, ...(signal ? { signal } : {}) });
    if (response.statusCode !== 200) throw await responseError(response, what);
    let page: unknown;
    try {
      page = JSON.parse(await response.body.text());
    } catch (error) {
      throw error instanceof SyntaxError ? new RegistryError('PROTOCOL', `${what}: answer is not JSON`) : networkError(error, what, signal);
    }
    if (typeof page !== 'object' || page === null || Array.isArray(page)) throw new RegistryError('PROTOCOL', `${what}: answer is not a JSON object`);
    const list = (page as Record<string, unknown>)[field];
    if (list !== null && list !== undefined && !Array.isArray(list)) {
      throw new RegistryError('PROTOCOL', `${what}: "${field}" is not a list`);
    }
    for (const name of list ?? []) if (typeof name === 'string') names.push(name);
    return response;
  });
  return names;
}

/**
 * Reads `first` with `page`, then each `Link: <...>; rel="next"` page, on the registry's own origin.
 * `page` reads the body and answers the response (for its Link), or undefined to stop.
 */
export async function followPages(first: URL, what: string, page: (url: string) => Promise<RegistryResponse | undefined>): Promise<void> {
  const visited = new Set<string>();
  let url: string | undefined = first.href;
  while (url) {
    // A Link elsewhere would get our credentials; one back to a visited page would loop forever.
    const origin = new URL(url).origin;
    if (origin !== first.origin) throw new RegistryError('PROTOCOL', `${what}: Link header points to another origin (${origin})`);
    if (visited.has(url)) throw new RegistryError('PROTOCOL', `${what}: Link header points back to an already listed page`);
    visited.add(url);
    const response = await page(url);
    if (response === undefined) return;
    url = nextLink(header(response, 'link'), url);
  }
}

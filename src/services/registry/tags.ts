import { responseError, header, networkError } from './client.js';
import { nextLink } from './link.js';
import { RegistryError } from './errors.js';
import type { Repository } from './repository.js';

const PAGE_SIZE = 1000;

/** All tags, following `Link: <...>; rel="next"` pages on the registry's own origin. */
export async function listTags(repo: Repository, signal?: AbortSignal, options: { pageSize?: number } = {}): Promise<string[]> {
  const pageSize = options.pageSize ?? PAGE_SIZE;
  const what = `list tags of ${repo.ref()}`;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new RegistryError('INVALID_CONFIG', `${what}: page size ${pageSize} is not a positive integer`);
  const tags: string[] = [];
  const first = repo.client.resolve(`${repo.path('tags/list')}?n=${pageSize}`);
  const visited = new Set<string>();
  let url: string | undefined = first.href;
  while (url) {
    // A Link elsewhere would get our credentials; one back to a visited page would loop forever.
    const origin = new URL(url).origin;
    if (origin !== first.origin) throw new RegistryError('PROTOCOL', `${what}: Link header points to another origin (${origin})`);
    if (visited.has(url)) throw new RegistryError('PROTOCOL', `${what}: Link header points back to an already listed page`);
    visited.add(url);
    const response = await repo.client.send({ method: 'GET', url, scopes: repo.scopes, what, ...(signal ? { signal } : {}) });
    if (response.statusCode !== 200) throw await responseError(response, what);
    let page: unknown;
    try {
      page = JSON.parse(await response.body.text());
    } catch (error) {
      throw error instanceof SyntaxError ? new RegistryError('PROTOCOL', `${what}: answer is not JSON`) : networkError(error, what, signal);
    }
    if (typeof page !== 'object' || page === null || Array.isArray(page)) throw new RegistryError('PROTOCOL', `${what}: answer is not a JSON object`);
    const list = (page as { tags?: unknown }).tags;
    if (list !== null && list !== undefined && !Array.isArray(list)) {
      throw new RegistryError('PROTOCOL', `${what}: "tags" is not a list`);
    }
    for (const tag of list ?? []) if (typeof tag === 'string') tags.push(tag);
    url = nextLink(header(response, 'link'), url);
  }
  return tags;
}

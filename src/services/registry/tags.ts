import { responseError, header } from './client.js';
import { nextLink } from './link.js';
import { RegistryError } from './errors.js';
import type { Repository } from './repository.js';

const PAGE_SIZE = 1000;

/** All tags, following `Link: <...>; rel="next"` pages. */
export async function listTags(repo: Repository, signal?: AbortSignal): Promise<string[]> {
  const tags: string[] = [];
  let url: string | undefined = `${repo.path('tags/list')}?n=${PAGE_SIZE}`;
  while (url) {
    const what = `list tags of ${repo.ref()}`;
    const response = await repo.client.send({ method: 'GET', url, scopes: repo.scopes, what, ...(signal ? { signal } : {}) });
    if (response.statusCode !== 200) throw await responseError(response, what);
    const page = (await response.body.json()) as { tags?: unknown };
    if (page.tags !== null && page.tags !== undefined && !Array.isArray(page.tags)) {
      throw new RegistryError('PROTOCOL', `${what}: "tags" is not a list`);
    }
    for (const tag of page.tags ?? []) if (typeof tag === 'string') tags.push(tag);
    url = nextLink(header(response, 'link'), repo.client.resolve(url).href);
  }
  return tags;
}

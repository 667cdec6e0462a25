import { listPages } from './pages.js';
import type { Repository } from './repository.js';

/** All tags, following `Link: <...>; rel="next"` pages on the registry's own origin. */
export async function listTags(repo: Repository, signal?: AbortSignal, options: { pageSize?: number } = {}): Promise<string[]> {
  return listPages({
    client: repo.client,
    path: repo.path('tags/list'),
    field: 'tags',
    scopes: repo.scopes,
    what: `list tags of ${repo.ref()}`,
    signal,
    pageSize: options.pageSize,
  });
}

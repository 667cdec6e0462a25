import type { Scope } from './auth.js';
import type { RegistryClient } from './client.js';
import { listPages } from './pages.js';

const CATALOG_SCOPE: Scope = { registry: 'catalog', actions: ['*'] };

/** Every repository of the registry (`/v2/_catalog`), following `Link` pages on its own origin. */
export async function listRepositories(client: RegistryClient, signal?: AbortSignal, options: { pageSize?: number } = {}): Promise<string[]> {
  return listPages({
    client,
    path: '/v2/_catalog',
    field: 'repositories',
    scopes: [CATALOG_SCOPE],
    what: `list repositories of ${client.registry}`,
    signal,
    pageSize: options.pageSize,
  });
}

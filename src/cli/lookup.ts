import { RemoteError, type Api } from './api-client.js';
import { UsageError } from './usage.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Named {
  id: string;
  name?: string;
}

/**
 * A job, execution, policy or registry as a person gives it: its name, its whole id, or the
 * start of an id that only it has. An ambiguous prefix is bad usage, naming the candidates.
 */
export async function resolveId(api: Api, resource: string, key: string): Promise<string> {
  // A whole id is asked for directly: listing every job to find one would cost a page per thousand.
  if (UUID.test(key)) return key;
  const items = await api.all<Named>(`/${resource}`);
  const exact = items.find((item) => item.name === key || item.id === key);
  if (exact) return exact.id;
  const matches = items.filter((item) => item.id.startsWith(key));
  const noun = resource.replace(/ies$/, 'y').replace(/s$/, '');
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length === 0) throw new RemoteError(`no ${noun} is named or has an id starting with "${key}"`);
  const candidates = matches.slice(0, 10).map((item) => (item.name ? `${item.id} (${item.name})` : item.id));
  throw new UsageError(`"${key}" matches ${matches.length} ${resource}: ${candidates.join(', ')}${matches.length > 10 ? ', ...' : ''}`);
}

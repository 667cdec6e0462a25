import type { Agent, Dispatcher, Pool } from 'undici';
import { undici } from './undici-parts.js';

/**
 * The connections of one registry client: a keep-alive pool per origin of the registry itself
 * (https, and http where allowed), open for the client's life; other origins (token realms,
 * redirects to object storage) go through an Agent.
 *
 * Not an Agent for everything: undici 7's Agent closes an origin's pool when its last
 * connection drops, and counts the closed pool's late disconnects against the pool that
 * replaced it, closing that one too (nodejs/undici#5034, fixed in undici 8, which needs
 * Node 22). After one dropped connection every request opened a new one: 1509 connections
 * for 3207 requests copying 200 small tags.
 */
export class RegistryConnections {
  readonly dispatcher: Dispatcher;
  readonly #options: Pool.Options;
  readonly #origins: Set<string>;
  readonly #pools = new Map<string, Pool>();
  readonly #agent: Agent;

  constructor(host: string, options: Pool.Options) {
    this.#options = options;
    this.#origins = new Set([new URL(`https://${host}`).origin, new URL(`http://${host}`).origin]);
    this.#agent = new undici.Agent(options);
    const route: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (request, handler) => {
      const pool = this.#pool(request.origin);
      return pool ? pool.dispatch(request, handler) : dispatch(request, handler);
    };
    // Registries backed by object storage redirect blob GETs; undici drops Authorization
    // when a redirect leaves the origin.
    this.dispatcher = this.#agent.compose(route, undici.redirect({ maxRedirections: 5 }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values(), this.#agent].map((dispatcher) => dispatcher.close()));
  }

  #pool(origin: Dispatcher.DispatchOptions['origin']): Pool | undefined {
    const key = typeof origin === 'string' ? origin : origin?.origin;
    if (key === undefined || !this.#origins.has(key)) return undefined;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new undici.Pool(key, this.#options);
      this.#pools.set(key, pool);
    }
    return pool;
  }
}

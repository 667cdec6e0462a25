import { createRequire } from 'node:module';
import type * as Undici from 'undici';

type RequestApi = (this: Undici.Dispatcher, options: Undici.Dispatcher.RequestOptions) => Promise<Undici.Dispatcher.ResponseData>;

export interface UndiciParts {
  Pool: typeof Undici.Pool;
  Agent: typeof Undici.Agent;
  redirect: typeof Undici.interceptors.redirect;
  /** `Dispatcher.prototype.request`: call it with the dispatcher as `this`. */
  request: RequestApi;
}

const require = createRequire(import.meta.url);

/**
 * The parts of undici a registry client uses, and nothing else. undici's index loads all of it
 * (fetch, WebSocket, EventSource, caches, mocks, proxies: 111 files, and through its cookies
 * Node's own bundled undici too), which cost every `ferry copy` about 70 ms of CPU before its
 * first request. If a later undici moves these files, the index it is.
 */
function load(): UndiciParts {
  try {
    return {
      Pool: require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool,
      Agent: require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent,
      redirect: require('undici/lib/interceptor/redirect.js') as typeof Undici.interceptors.redirect,
      request: require('undici/lib/api/api-request.js') as RequestApi,
    };
  } catch {
    const undici = require('undici') as typeof Undici;
    return { Pool: undici.Pool, Agent: undici.Agent, redirect: undici.interceptors.redirect, request: undici.Dispatcher.prototype.request as RequestApi };
  }
}

export const undici: UndiciParts = load();

// The console's only door to the service: JSON calls and Server-Sent Events over fetch, both
// carrying the bearer token kept in localStorage. EventSource is not used: it cannot send headers.

const BASE = '/api/v1';
const TOKEN_KEY = 'ferry.token';

/** @type {Set<() => void>} */
const unauthorizedListeners = new Set();

export class ApiError extends Error {
  /** @param {number} status @param {string} message @param {string} [field] the request field refused, as `body.trigger.schedule` */
  constructor(status, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field;
  }
}

/** @returns {string | null} */
export const token = () => localStorage.getItem(TOKEN_KEY);

/** @param {string | null} value */
export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

/** Called whenever the API answers 401: the app asks for a token. @param {() => void} listener */
export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

/** @param {Record<string, string>} [extra] */
function headers(extra = {}) {
  const value = token();
  return value ? { ...extra, authorization: `Bearer ${value}` } : extra;
}

/** @param {Response} response */
async function failure(response) {
  if (response.status === 401) for (const listener of unauthorizedListeners) listener();
  let message = `${response.status} ${response.statusText}`;
  /** @type {string | undefined} */
  let field;
  try {
    const body = await response.json();
    if (body && typeof body.message === 'string') message = body.message;
    if (body && typeof body.field === 'string') field = body.field;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, field);
}

/**
 * A JSON call under /api/v1.
 * @template T
 * @param {string} path
 * @param {{ method?: string, body?: unknown, query?: Record<string, string | number | undefined | null>, signal?: AbortSignal }} [options]
 * @returns {Promise<T>}
 */
export async function call(path, { method = 'GET', body, query, signal } = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  const url = `${BASE}${path}${search.size ? `?${search}` : ''}`;
  const response = await fetch(url, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(signal ? { signal } : {}),
  });
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? /** @type {T} */ (undefined) : response.json();
}

/** @param {string} path @param {AbortSignal} [signal] */
export const get = (path, signal) => call(path, signal ? { signal } : {});
/** @param {string} path */
export const post = (path) => call(path, { method: 'POST' });

/**
 * Every registry or policy: those lists are becoming pages (`{ items, total }`), and this
 * takes either shape, asking for a page as large as the API gives.
 * @param {'/registries' | '/policies'} path
 * @returns {Promise<any[]>}
 */
export async function all(path) {
  const answer = await call(path, { query: { limit: 1000 } });
  return Array.isArray(answer) ? answer : answer.items;
}

/**
 * Parses one SSE block (lines up to a blank line). Comment lines (`: ping`) yield nothing.
 * @param {string} block
 * @returns {{ event: string, data: string } | null}
 */
export function parseEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length ? { event, data: data.join('\n') } : null;
}

/**
 * Subscribes to an SSE route; reconnects after a drop (with a growing delay) until closed.
 * `onOpen` runs on every (re)connection, before its first event.
 * @param {string} path
 * @param {{ onEvent: (type: string, data: any) => void, onOpen?: () => void, onState?: (state: 'connecting' | 'open' | 'closed') => void }} handlers
 * @returns {{ close: () => void }}
 */
export function subscribe(path, { onEvent, onOpen, onState }) {
  const controller = new AbortController();
  let delay = 500;
  const run = async () => {
    while (!controller.signal.aborted) {
      onState?.('connecting');
      try {
        const response = await fetch(`${BASE}${path}`, { headers: headers({ accept: 'text/event-stream' }), signal: controller.signal, cache: 'no-store' });
        if (!response.ok || !response.body) throw await failure(response);
        delay = 500;
        onState?.('open');
        onOpen?.();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
            const parsed = parseEvent(block);
            if (!parsed) continue;
            let data;
            try {
              data = JSON.parse(parsed.data);
            } catch {
              data = parsed.data;
            }
            onEvent(parsed.event, data);
          }
        }
      } catch (error) {
        if (controller.signal.aborted) break;
        if (error instanceof ApiError && error.status === 401) break; // wait for a token: the app remounts
      }
      if (controller.signal.aborted) break;
      onState?.('closed');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10_000);
    }
    onState?.('closed');
  };
  void run();
  return { close: () => controller.abort() };
}

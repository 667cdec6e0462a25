// Small formatters shared by the views.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** @param {number | undefined | null} n */
export function bytes(n) {
  if (n === undefined || n === null || !Number.isFinite(n)) return '—';
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

/** `850 ms`, `4.2 s`, `3 m 05 s`, `2 h 01 m`. @param {number | null | undefined} ms */
export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

/** Local time with milliseconds: transitions are often close together. @param {string | null | undefined} iso */
export function clock(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  const pad = (/** @type {number} */ n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Date and time, for lists. @param {string | null | undefined} iso */
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/** `abc123de` for long ids. @param {string} id */
export const shortId = (id) => (id.length > 12 ? id.slice(0, 8) : id);

/** `done (initialize)` for `xstate.done.actor.initialize`. @param {string} event */
export function eventName(event) {
  const actor = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event);
  return actor ? `${actor[1]} (${actor[2]})` : event;
}

/** Tags, referrers, blobs and bytes of a job's progress, whichever machine it ran. @param {Record<string, number>} p */
export function progressSummary(p = {}) {
  const total = p.tagsTotal ?? 0;
  const refused = p.tagsRefused ?? 0;
  const failed = p.tagsFailed ?? 0;
  const done = (p.tagsCopied ?? 0) + (p.tagsUnchanged ?? 0) + (p.tagsKept ?? 0) + refused + failed + (p.tagsDeleted ?? 0) + (p.tagsAbsent ?? 0);
  const blobs = (p.blobsCopied ?? 0) + (p.blobsMounted ?? 0);
  const referrers = (p.referrersCopied ?? 0) + (p.referrersDeleted ?? 0);
  return { done, total, refused, failed, referrers, blobs, blobsCopied: p.blobsCopied ?? 0, blobsMounted: p.blobsMounted ?? 0, bytes: p.bytesCopied ?? 0 };
}

/**
 * Creates an element: `h('a', { href: '#/', class: 'x' }, 'text', child)`. Attributes set to
 * null/false are left out; `on*` functions become listeners.
 * @param {string} tag
 * @param {Record<string, any> | null} [attributes]
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(child instanceof Node ? child : String(child));
  return element;
}

/** A status pill. @param {string} status */
export const badge = (status) => h('span', { class: `badge status-${status}`, 'data-status': status }, status);

// The registries, each with its request budget as the node serving the console knows it (the
// others' pauses and pulls are shared with it; waiting requests are its own), read again every
// few seconds.

import { get } from './api.js';
import { clock, duration, h } from './format.js';

const HEAD = ['registry', 'URL', 'ceiling', 'rate now', 'pulls left', 'paused until', 'waiting'];
const REFRESH_MS = 3_000;

/** @param {number | null} rate */
const perSecond = (rate) => (rate === null ? 'no limit' : `${Number(rate.toFixed(1))}/s`);

/** @param {{ limit: number, remaining: number, windowSeconds: number | null, resetAt: string | null } | null} pulls */
function pullsText(pulls) {
  if (!pulls) return 'not counted';
  const window = pulls.windowSeconds === null ? '' : ` per ${duration(pulls.windowSeconds * 1000)}`;
  return `${pulls.remaining} of ${pulls.limit}${window}${pulls.resetAt ? `, whole again at ${clock(pulls.resetAt)}` : ''}`;
}

/** @param {any} registry @param {any} budget */
function row(registry, budget) {
  const cell = (/** @type {string} */ name, /** @type {string} */ text) => h('td', { 'data-budget': name }, text);
  return h(
    'tr',
    { 'data-registry': registry.id },
    h('td', null, registry.name),
    h('td', { class: 'mono' }, registry.url),
    cell('ceiling', perSecond(budget.requestsPerSecond)),
    cell('rate', perSecond(budget.rate)),
    cell('pulls', pullsText(budget.pulls)),
    cell('paused', budget.pausedUntil ? clock(budget.pausedUntil) : '—'),
    cell('waiting', String(budget.waiting)),
  );
}

/** `#/registries`. @param {HTMLElement} view */
export async function mountRegistries(view) {
  const body = h('tbody');
  const render = async () => {
    const { items: registries } = await get('/registries?limit=1000');
    const budgets = await Promise.all(registries.map((/** @type {any} */ r) => get(`/registries/${encodeURIComponent(r.id)}/budget`)));
    const empty = h('tr', null, h('td', { colspan: HEAD.length, class: 'muted empty' }, 'No registries: add them through the API or a ferry.yaml.'));
    body.replaceChildren(...(registries.length ? registries.map((/** @type {any} */ r, /** @type {number} */ i) => row(r, budgets[i])) : [empty]));
  };
  await render();
  view.replaceChildren(
    h(
      'section',
      { class: 'panel registries' },
      h('div', { class: 'panel-head' }, h('h2', null, 'Registries')),
      h('div', { class: 'table-scroll' }, h('table', { class: 'list' }, h('thead', null, h('tr', null, ...HEAD.map((t) => h('th', null, t)))), body)),
    ),
  );
  const timer = setInterval(() => void render().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}

// The registries, each with its request budget as the node serving the console knows it (the
// others' pauses and pulls are shared with it; waiting requests are its own), read again every
// few seconds; one registry's page (the form that edits it, test connection, delete); and the
// page that adds one.

import { ApiError, call, get } from './api.js';
import { clock, duration, h } from './format.js';
import { registryForm } from './registry-form.js';

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
    h('td', null, h('a', { href: `#/registries/${encodeURIComponent(registry.id)}` }, registry.name)),
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
    const empty = h('tr', null, h('td', { colspan: HEAD.length, class: 'muted empty' }, 'No registries yet.'));
    body.replaceChildren(...(registries.length ? registries.map((/** @type {any} */ r, /** @type {number} */ i) => row(r, budgets[i])) : [empty]));
  };
  await render();
  view.replaceChildren(
    h(
      'section',
      { class: 'panel registries' },
      h('div', { class: 'panel-head' }, h('h2', null, 'Registries'), h('div', { class: 'filters' }, h('a', { href: '#/registries/new', class: 'button' }, 'New registry'))),
      h('div', { class: 'table-scroll' }, h('table', { class: 'list' }, h('thead', null, h('tr', null, ...HEAD.map((t) => h('th', null, t)))), body)),
    ),
  );
  const timer = setInterval(() => void render().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}

/** @param {unknown} error */
const reason = (error) => (error instanceof ApiError ? error.message : String(error));

/** @param {string} crumb @param {string} title @param {...(Node | string)} notes */
const header = (crumb, title, ...notes) =>
  h('header', { class: 'page-header' }, h('div', null, h('div', { class: 'crumbs' }, h('a', { href: '#/registries' }, 'Registries'), ' / ', crumb), h('h1', null, title), ...notes));

/**
 * The form, the API's refusals shown at the field they name.
 * @param {any} registry @param {string} submitLabel @param {(body: Record<string, unknown>) => Promise<void>} save
 */
function editor(registry, submitLabel, save) {
  const form = registryForm(registry, {
    submitLabel,
    onSubmit: async (body) => {
      try {
        await save(body);
      } catch (error) {
        form.showError(error instanceof ApiError ? error.field : undefined, reason(error));
      }
    },
  });
  return form.element;
}

/** `#/registries/new`. @param {HTMLElement} view */
export async function mountNewRegistry(view) {
  const form = editor(null, 'Create', async (body) => {
    const created = await call('/registries', { method: 'POST', body });
    location.hash = `#/registries/${encodeURIComponent(created.id)}`;
  });
  view.replaceChildren(header('new', 'New registry'), form);
  return () => {};
}

/** `#/registries/:id`. @param {HTMLElement} view @param {{ id: string }} params */
export async function mountRegistry(view, { id }) {
  const path = `/registries/${encodeURIComponent(id)}`;

  /** @param {any} registry @param {string} [note] */
  const render = (registry, note = '') => {
    const message = h('span', { class: 'message', role: 'status' });
    /** @param {string} action @param {string} label @param {() => Promise<void>} run */
    const button = (action, label, run) => {
      const element = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', 'data-action': action }, label));
      element.addEventListener('click', async () => {
        element.disabled = true;
        message.textContent = '';
        message.removeAttribute('data-outcome');
        try {
          await run();
        } catch (error) {
          message.dataset.outcome = 'failed';
          message.className = 'message error';
          message.textContent = reason(error);
        } finally {
          element.disabled = false;
        }
      });
      return element;
    };
    const ping = button('ping', 'Test connection', async () => {
      await call(`${path}/ping`, { method: 'POST' });
      message.dataset.outcome = 'ok';
      message.className = 'message';
      message.textContent = `Connected to ${registry.url}.`;
    });
    const remove = button('delete', 'Delete', async () => {
      if (!confirm(`Delete registry ${registry.name}?`)) return;
      await call(path, { method: 'DELETE' });
      location.hash = '#/registries';
    });
    const form = editor(registry, 'Save', async (body) => render(await call(path, { method: 'PATCH', body }), 'Saved.'));
    const head = header(registry.name, `Registry ${registry.name}`, h('span', { class: 'muted saved' }, note), message);
    head.append(h('div', { class: 'actions' }, ping, remove));
    view.replaceChildren(head, form);
  };
  render(await get(path));
  return () => {};
}

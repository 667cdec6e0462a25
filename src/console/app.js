// The console's router: hash routes, one view mounted at a time (its streams closed when
// leaving it), and the token form the API's 401 opens.

import { ApiError, onUnauthorized, setToken, token } from './api.js';
import { h } from './format.js';
import { mountJobPage } from './job-page.js';
import { mountExecution, mountHome, mountNode, mountNodes } from './jobs.js';
import { mountNewPolicy, mountPolicies, mountPolicy } from './policies.js';
import { mountNewRegistry, mountRegistries, mountRegistry } from './registries.js';

/** @typedef {(view: HTMLElement, params: Record<string, string>) => Promise<() => void>} Mount */

/** @type {Array<[RegExp, Mount, string[]]>} */
const ROUTES = [
  [/^#?\/?$/, mountHome, []],
  [/^#\/executions\/([^/]+)$/, mountExecution, ['id']],
  [/^#\/jobs\/([^/]+)$/, mountJobPage, ['id']],
  [/^#\/policies$/, mountPolicies, []],
  [/^#\/policies\/new$/, mountNewPolicy, []],
  [/^#\/policies\/([^/]+)$/, mountPolicy, ['id']],
  [/^#\/registries$/, mountRegistries, []],
  [/^#\/registries\/new$/, mountNewRegistry, []],
  [/^#\/registries\/([^/]+)$/, mountRegistry, ['id']],
  [/^#\/nodes$/, mountNodes, []],
  [/^#\/nodes\/([^/]+)$/, mountNode, ['id']],
];

const view = /** @type {HTMLElement} */ (document.getElementById('view'));
const dialog = /** @type {HTMLDialogElement} */ (document.getElementById('token-dialog'));
const tokenForm = /** @type {HTMLFormElement} */ (document.getElementById('token-form'));
const tokenInput = /** @type {HTMLInputElement} */ (document.getElementById('token-input'));

/** @type {(() => void) | undefined} */
let unmount;
let generation = 0;

async function route() {
  const mine = ++generation;
  unmount?.();
  unmount = undefined;
  const hash = location.hash || '#/';
  const match = ROUTES.map(([pattern, mount, names]) => ({ found: pattern.exec(hash), mount, names })).find((r) => r.found);
  if (!match?.found) {
    view.replaceChildren(h('p', null, 'No such page. ', h('a', { href: '#/' }, 'Back to the jobs.')));
    return;
  }
  const params = Object.fromEntries(match.names.map((name, i) => [name, decodeURIComponent(match.found?.[i + 1] ?? '')]));
  try {
    const cleanup = await match.mount(view, params);
    if (mine === generation) unmount = cleanup;
    else cleanup();
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof ApiError && error.status === 401) {
      view.replaceChildren(h('p', { class: 'muted' }, 'The API wants a token.'));
      return;
    }
    view.replaceChildren(h('p', { class: 'error' }, error instanceof ApiError && error.status === 404 ? 'Not found: ' : 'Failed to load: ', /** @type {Error} */ (error).message));
  }
}

function askForToken() {
  if (dialog.open) return;
  tokenInput.value = token() ?? '';
  dialog.showModal();
  tokenInput.focus();
}

tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  setToken(tokenInput.value.trim() || null);
  dialog.close();
  void route();
});
document.getElementById('token-button')?.addEventListener('click', askForToken);
onUnauthorized(askForToken);
window.addEventListener('hashchange', () => void route());
void route();

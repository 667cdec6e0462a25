// What a policy draft would copy if it ran now: the service's dry run of its first
// repositories, asked again a moment after each change of the form.

import { ApiError, call } from './api.js';
import { bytes, duration, h } from './format.js';

const SETTLE_MS = 600;

const LEFT_OUT = /** @type {Record<string, string>} */ ({ pattern: 'by pattern', notSemver: 'not semver', prerelease: 'prerelease', outsideRange: 'outside the range', beyondLatest: 'beyond the latest' });

/** @param {Record<string, number>} leftOut */
const leftOutText = (leftOut) => Object.entries(leftOut).map(([reason, n]) => `${n} ${LEFT_OUT[reason] ?? reason}`).join(', ') || '—';

/** @param {any} repository */
function repositoryRow(repository) {
  const copies = new Map(repository.toCopy.map((/** @type {{ tag: string, bytes: number }} */ t) => [t.tag, t.bytes]));
  return h(
    'tr',
    { 'data-repository': repository.source },
    h('td', { class: 'mono' }, repository.source, h('div', { class: 'muted' }, '→ ', repository.destination)),
    h(
      'td',
      { class: 'mono tags' },
      ...repository.selected.map((/** @type {string} */ tag) =>
        h('span', { class: `tag ${copies.has(tag) ? 'to-copy' : 'unchanged'}`, 'data-tag': tag, title: copies.has(tag) ? `${bytes(copies.get(tag))} missing at the destination` : 'already at the destination' }, tag),
      ),
      repository.error ? h('div', { class: 'error' }, repository.error) : '',
    ),
    h('td', { class: 'num' }, repository.listed === undefined ? '—' : `${repository.selected.length} of ${repository.listed}`),
    h('td', { class: 'muted' }, leftOutText(repository.leftOut)),
    h('td', { class: 'num' }, `${repository.toCopy.length} (${repository.unchanged.length} unchanged)`),
    h('td', { class: 'num', 'data-bytes': repository.bytes }, bytes(repository.bytes)),
  );
}

const HEAD = ['repository', 'selected tags (to copy / already there)', 'tags', 'left out', 'to copy', 'bytes'];

/** @param {() => Record<string, unknown>} draft the form's policy, read when the preview runs */
export function policyPreview(draft) {
  const summary = h('p', { class: 'preview-summary' }, 'Change the form, or press Preview.');
  const body = h('tbody');
  const button = h('button', { type: 'button', class: 'step', onclick: () => void run() }, 'Preview');
  const element = h(
    'section',
    { class: 'panel preview', 'aria-busy': 'false' },
    h('div', { class: 'panel-head' }, h('h2', null, 'Preview: a dry run against the registries'), h('div', { class: 'filters' }, button)),
    summary,
    h('div', { class: 'table-scroll' }, h('table', { class: 'list' }, h('thead', null, h('tr', null, ...HEAD.map((t) => h('th', null, t)))), body)),
  );
  /** @type {AbortController | undefined} */
  let running;
  let timer = 0;

  async function run() {
    clearTimeout(timer);
    running?.abort();
    const controller = (running = new AbortController());
    const policy = draft();
    if (!policy.sourceRegistryId || !policy.destinationRegistryId) {
      summary.textContent = 'Choose the registries to copy from and to.';
      body.replaceChildren();
      return;
    }
    element.setAttribute('aria-busy', 'true');
    summary.textContent = 'Running a dry run…';
    const started = performance.now();
    try {
      const preview = await call('/policies/preview', { method: 'POST', body: policy, signal: controller.signal });
      const shown = preview.repositories.length;
      summary.replaceChildren(
        h('strong', { 'data-total-bytes': preview.bytes }, bytes(preview.bytes)),
        ` to copy from the ${shown} previewed of ${preview.repositoriesSelected} selected repositories. `,
        `A preview covers the first ${preview.bounds.repositories} repositories in at most ${duration(preview.bounds.timeoutMs)}, and writes nothing. Took ${duration(performance.now() - started)}.`,
      );
      body.replaceChildren(...(shown ? preview.repositories.map(repositoryRow) : [h('tr', null, h('td', { colspan: HEAD.length, class: 'muted empty' }, 'The filters select no repository.'))]));
    } catch (error) {
      if (controller.signal.aborted) return;
      summary.textContent = `No preview: ${error instanceof ApiError ? error.message : String(error)}`;
      body.replaceChildren();
    }
    element.setAttribute('aria-busy', 'false');
  }

  return {
    element,
    /** After a change of the form: runs once the typing settles. */
    schedule: () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => void run(), SETTLE_MS);
    },
    run,
    dispose: () => {
      clearTimeout(timer);
      running?.abort();
    },
  };
}

// The policies; one policy's page (its settings, the form that edits them, enable/disable,
// trigger now, and the preview of what it would copy); and the page that creates one.

import { all, ApiError, call, get, post } from './api.js';
import { h, when } from './format.js';
import { policyForm } from './policy-form.js';
import { policyPreview } from './preview.js';
import { vocabulary } from './vocabulary.js';

const HEAD = ['policy', 'source → destination', 'trigger', 'referrers', 'signature', 'updated'];

/** @param {any} policy */
const triggerText = (policy) => (policy.trigger.type === 'cron' ? `cron ${policy.trigger.schedule}` : policy.trigger.type);

/** @param {string | string[]} referrers */
const referrersText = (referrers) => (Array.isArray(referrers) ? referrers.join(', ') : referrers);

/** @param {any} policy */
const signatureText = (policy) => (policy.requireSignature ? `required, with ${policy.requireSignature.source}` : 'not required');

/** Registry names by id, for showing what a policy connects. @param {any[]} registries */
const namesOf = (registries) => new Map(registries.map((registry) => [registry.id, registry.name]));

/** @param {any} policy @param {Map<string, string>} names */
const ends = (policy, names) => `${names.get(policy.sourceRegistryId) ?? policy.sourceRegistryId} → ${names.get(policy.destinationRegistryId) ?? policy.destinationRegistryId}`;

/** `#/policies`. @param {HTMLElement} view */
export async function mountPolicies(view) {
  const [policies, registries] = await Promise.all([all('/policies'), all('/registries')]);
  const names = namesOf(registries);
  const rows = policies.map((/** @type {any} */ policy) =>
    h(
      'tr',
      { 'data-policy': policy.id },
      h('td', null, h('a', { href: `#/policies/${policy.id}` }, policy.name), policy.enabled ? '' : h('span', { class: 'muted' }, ' (disabled)')),
      h('td', { class: 'mono' }, ends(policy, names)),
      h('td', null, triggerText(policy)),
      h('td', { class: 'mono' }, referrersText(policy.referrers)),
      h('td', null, policy.requireSignature ? 'required' : '—'),
      h('td', { class: 'muted' }, when(policy.updatedAt)),
    ),
  );
  const empty = h('tr', null, h('td', { colspan: HEAD.length, class: 'muted empty' }, 'No policies yet.'));
  view.replaceChildren(
    h(
      'section',
      { class: 'panel policies' },
      h('div', { class: 'panel-head' }, h('h2', null, 'Policies'), h('div', { class: 'filters' }, h('a', { href: '#/policies/new', class: 'button' }, 'New policy'))),
      h('div', { class: 'table-scroll' }, h('table', { class: 'list' }, h('thead', null, h('tr', null, ...HEAD.map((t) => h('th', null, t)))), h('tbody', null, ...(rows.length ? rows : [empty])))),
    ),
  );
  return () => {};
}

/** @param {any} policy @param {Map<string, string>} names */
function settingsList(policy, names) {
  const filter = (/** @type {{ include: string[], exclude: string[] }} */ f) => `${f.include.join(', ') || 'everything'}${f.exclude.length ? `, not ${f.exclude.join(', ')}` : ''}`;
  const rows = [
    ['registries', ends(policy, names)],
    ['enabled', policy.enabled ? 'yes' : 'no'],
    ['repositories', filter(policy.repositories)],
    [`tags (${policy.tags.syntax})`, [filter(policy.tags), ...versionFilters(policy.tags)].join('; ')],
    ['rewrite', policy.rewrite.namespace ? `under ${policy.rewrite.namespace}, flatten ${policy.rewrite.flatten}` : `flatten ${policy.rewrite.flatten}`],
    ['platforms', policy.platforms.join(', ') || 'all'],
    ['override', policy.override ? 'replaces a tag that points elsewhere' : 'keeps a tag that points elsewhere'],
    ['deletions', policy.replicateDeletions ? 'replicated' : 'not replicated'],
    ['bandwidth', policy.bandwidthKiBps === null ? 'no limit' : `${policy.bandwidthKiBps} KiB/s per job`],
    ['trigger', triggerText(policy)],
    ['priority', String(policy.priority)],
    ['referrers', referrersText(policy.referrers)],
    ['signature', signatureText(policy)],
  ];
  return h('dl', { class: 'policy-settings' }, ...rows.flatMap(([term, value]) => [h('dt', null, term), h('dd', { 'data-setting': term }, value)]));
}

/** A tag filter's semver range and latest N, as ferry.yaml words them. @param {any} tags */
function versionFilters(tags) {
  return [
    ...(tags.semver ? [`semver ${tags.semver.range}${tags.semver.includePrerelease ? ' with prereleases' : ''}`] : []),
    ...(tags.latest ? [`the latest ${tags.latest.count} by ${tags.latest.by}`] : []),
  ];
}

/**
 * The form and the preview that follows it; `save` stores the form's policy and says what
 * became of it. The API's refusals are shown at the field they name.
 * @param {any} policy @param {any[]} registries @param {string} submitLabel @param {(body: Record<string, unknown>) => Promise<any>} save
 */
function editor(policy, registries, submitLabel, save) {
  const preview = policyPreview(() => form.body());
  const form = policyForm(policy, registries, {
    submitLabel,
    onChange: preview.schedule,
    onSubmit: async (body) => {
      try {
        await save(body);
      } catch (error) {
        form.showError(error instanceof ApiError ? error.field : undefined, error instanceof ApiError ? error.message : String(error));
      }
    },
  });
  return { elements: [form.element, preview.element], preview };
}

/** `#/policies/new`. @param {HTMLElement} view */
export async function mountNewPolicy(view) {
  const [{ policyDefaults }, registries] = await Promise.all([vocabulary(), all('/registries')]);
  const { elements, preview } = editor({ ...policyDefaults, name: '' }, registries, 'Create', async (body) => {
    const created = await call('/policies', { method: 'POST', body });
    location.hash = `#/policies/${created.id}`;
  });
  view.replaceChildren(h('header', { class: 'page-header' }, h('div', null, h('div', { class: 'crumbs' }, h('a', { href: '#/policies' }, 'Policies'), ' / new'), h('h1', null, 'New policy'))), ...elements);
  return preview.dispose;
}

/** `#/policies/:id`. @param {HTMLElement} view @param {{ id: string }} params */
export async function mountPolicy(view, { id }) {
  const path = `/policies/${encodeURIComponent(id)}`;
  const [initial, registries] = await Promise.all([get(path), all('/registries')]);
  const names = namesOf(registries);
  /** @type {() => void} */
  let dispose = () => {};

  /** @param {any} policy @param {string} [note] */
  const render = (policy, note = '') => {
    dispose();
    const message = h('span', { class: 'message', role: 'status' });
    /** @param {() => Promise<void>} action */
    const attempt = async (action) => {
      message.textContent = '';
      try {
        await action();
      } catch (error) {
        message.textContent = error instanceof ApiError ? error.message : String(error);
      }
    };
    const toggle = h('button', { type: 'button', 'data-action': policy.enabled ? 'disable' : 'enable', onclick: () => attempt(async () => render(await call(path, { method: 'PATCH', body: { enabled: !policy.enabled } }), policy.enabled ? 'Disabled.' : 'Enabled.')) }, policy.enabled ? 'Disable' : 'Enable');
    const trigger = h('button', { type: 'button', 'data-action': 'trigger', disabled: !policy.enabled, title: policy.enabled ? 'run the policy now' : 'enable the policy to run it', onclick: () => attempt(async () => {
      const { execution } = await post(`${path}/trigger`);
      location.hash = `#/executions/${execution.id}`;
    }) }, 'Trigger now');
    const { elements, preview } = editor(policy, registries, 'Save', async (body) => render(await call(path, { method: 'PATCH', body }), 'Saved.'));
    dispose = preview.dispose;
    view.replaceChildren(
      h(
        'header',
        { class: 'page-header' },
        h('div', null, h('div', { class: 'crumbs' }, h('a', { href: '#/policies' }, 'Policies'), ' / ', policy.name), h('h1', null, 'Policy ', policy.name, policy.enabled ? '' : h('span', { class: 'muted' }, ' (disabled)')), h('span', { class: 'muted saved' }, note), message),
        h('div', { class: 'actions' }, toggle, trigger),
      ),
      h('section', { class: 'panel' }, h('h2', null, 'Settings'), settingsList(policy, names)),
      ...elements,
    );
    void preview.run();
  };
  render(initial);
  return () => dispose();
}

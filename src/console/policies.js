// The policies, and one policy's page: its settings, and a form for what travels with its
// images (referrers) and the key their signatures must verify with.

import { ApiError, call, get } from './api.js';
import { h, when } from './format.js';

const HEAD = ['policy', 'source → destination', 'trigger', 'referrers', 'signature', 'updated'];

/** @param {any} policy */
const triggerText = (policy) => (policy.trigger.type === 'cron' ? `cron ${policy.trigger.schedule}` : policy.trigger.type);

/** @param {string | string[]} referrers */
const referrersText = (referrers) => (Array.isArray(referrers) ? referrers.join(', ') : referrers);

/** @param {any} policy */
const signatureText = (policy) => (policy.requireSignature ? `required, with ${policy.requireSignature.source}` : 'not required');

/** Registry names by id, for showing what a policy connects. */
async function registryNames() {
  const { items } = await get('/registries?limit=1000');
  return new Map(items.map((/** @type {any} */ registry) => [registry.id, registry.name]));
}

/** @param {any} policy @param {Map<string, string>} names */
const ends = (policy, names) => `${names.get(policy.sourceRegistryId) ?? policy.sourceRegistryId} → ${names.get(policy.destinationRegistryId) ?? policy.destinationRegistryId}`;

/** `#/policies`. @param {HTMLElement} view */
export async function mountPolicies(view) {
  const [{ items: policies }, names] = await Promise.all([get('/policies?limit=1000'), registryNames()]);
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
  const empty = h('tr', null, h('td', { colspan: HEAD.length, class: 'muted empty' }, 'No policies: add them through the API or a ferry.yaml.'));
  view.replaceChildren(
    h(
      'section',
      { class: 'panel policies' },
      h('div', { class: 'panel-head' }, h('h2', null, 'Policies')),
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

/** Artifact types as a person writes them: separated by commas, spaces or lines. @param {string} text */
const artifactTypes = (text) => text.split(/[\s,]+/).filter(Boolean);

/**
 * The referrers and the signing key of a policy, saved with PATCH. A key left as it was is not
 * sent, so that it keeps the source it was stored with (a ferry.yaml's path).
 * @param {any} policy @param {(saved: any) => void} onSaved @param {boolean} saved
 */
function referrersForm(policy, onSaved, saved) {
  const mode = Array.isArray(policy.referrers) ? 'types' : policy.referrers;
  const types = /** @type {HTMLInputElement} */ (h('input', { type: 'text', name: 'referrer-types', class: 'mono', placeholder: 'application/spdx+json, application/vnd.in-toto+json', value: Array.isArray(policy.referrers) ? policy.referrers.join(', ') : '' }));
  const choice = (/** @type {string} */ value, /** @type {string} */ label) =>
    h('label', null, h('input', { type: 'radio', name: 'referrers', value, checked: value === mode, onchange: () => (types.disabled = value !== 'types') }), ` ${label}`);
  types.disabled = mode !== 'types';
  const storedKey = policy.requireSignature?.key ?? '';
  const key = /** @type {HTMLTextAreaElement} */ (h('textarea', { name: 'signing-key', class: 'mono', rows: 5, placeholder: '-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----' }));
  key.value = storedKey;
  const message = h('span', { class: 'message', role: 'status' });
  const note = saved ? h('span', { class: 'muted saved' }, 'Saved.') : '';

  /** @param {SubmitEvent} event */
  async function save(event) {
    event.preventDefault();
    message.textContent = '';
    const form = /** @type {HTMLFormElement} */ (event.target);
    const chosen = new FormData(form).get('referrers');
    /** @type {Record<string, unknown>} */
    const body = { referrers: chosen === 'types' ? artifactTypes(types.value) : chosen };
    if (key.value.trim() !== storedKey.trim()) body.requireSignature = key.value.trim() ? { key: key.value } : null;
    try {
      onSaved(await call(`/policies/${encodeURIComponent(policy.id)}`, { method: 'PATCH', body }));
    } catch (error) {
      message.textContent = error instanceof ApiError ? error.message : String(error);
    }
  }

  return h(
    'form',
    { class: 'panel referrers-form', onsubmit: save },
    h('h2', null, 'Referrers and signatures'),
    h('fieldset', null, h('legend', null, 'Referrers copied with each image (signatures, SBOMs, attestations)'), choice('all', 'all'), choice('none', 'none'), choice('types', 'only these artifact types:'), types),
    h('fieldset', null, h('legend', null, 'Copy only images signed with this key (cosign, ECDSA P-256 public key in PEM); empty: no signature required'), key),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save'), note, message),
  );
}

/** `#/policies/:id`. @param {HTMLElement} view @param {{ id: string }} params */
export async function mountPolicy(view, { id }) {
  const [initial, names] = await Promise.all([get(`/policies/${encodeURIComponent(id)}`), registryNames()]);
  const render = (/** @type {any} */ policy, saved = false) =>
    view.replaceChildren(
      h('header', { class: 'page-header' }, h('div', null, h('div', { class: 'crumbs' }, h('a', { href: '#/policies' }, 'Policies'), ' / ', policy.name), h('h1', null, 'Policy ', policy.name))),
      h('section', { class: 'panel' }, h('h2', null, 'Settings'), settingsList(policy, names)),
      referrersForm(policy, (changed) => render(changed, true), saved),
    );
  render(initial);
  return () => {};
}

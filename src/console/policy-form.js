// Every setting of a policy in one form, new or stored. The API checks the rules; the form
// shows what it refuses next to the field it names.

import { settingsForm } from './fields.js';
import { h } from './format.js';

/** Patterns one a line: a regular expression may hold commas and spaces. @param {string} text */
const lines = (text) => text.split('\n').map((line) => line.trim()).filter(Boolean);
/** Platforms and artifact types as a person writes them: separated by commas, spaces or lines. @param {string} text */
const words = (text) => text.split(/[\s,]+/).filter(Boolean);

/** @param {string} name @param {string} value @param {Record<string, any>} [attributes] */
const text = (name, value, attributes = {}) => /** @type {HTMLInputElement} */ (h('input', { type: 'text', name, value, ...attributes }));
/** @param {string} name @param {number | null | undefined} value @param {Record<string, any>} [attributes] */
const number = (name, value, attributes = {}) => /** @type {HTMLInputElement} */ (h('input', { type: 'number', name, value: value ?? '', ...attributes }));
/** @param {string} name @param {boolean} checked */
const checkbox = (name, checked) => /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', name, checked }));
/** @param {string} name @param {string[]} lines */
function area(name, lines) {
  const element = /** @type {HTMLTextAreaElement} */ (h('textarea', { name, rows: 3, class: 'mono' }));
  element.value = lines.join('\n');
  return element;
}
/** @param {string} name @param {Array<[string, string]>} options @param {string} value */
const choice = (name, options, value) =>
  /** @type {HTMLSelectElement} */ (h('select', { name }, ...options.map(([v, label]) => h('option', { value: v, selected: v === value }, label))));

/**
 * @param {any} policy a stored policy, or the defaults of a new one
 * @param {any[]} registries
 * @param {{ submitLabel: string, onSubmit: (body: Record<string, unknown>) => Promise<void>, onChange: () => void }} options
 */
export function policyForm(policy, registries, { submitLabel, onSubmit, onChange }) {
  const registryOptions = /** @type {Array<[string, string]>} */ ([['', 'choose a registry'], ...registries.map((r) => [r.id, `${r.name} (${r.url})`])]);
  const c = {
    name: text('name', policy.name ?? '', { required: true }),
    enabled: checkbox('enabled', policy.enabled),
    source: choice('sourceRegistryId', registryOptions, policy.sourceRegistryId ?? ''),
    destination: choice('destinationRegistryId', registryOptions, policy.destinationRegistryId ?? ''),
    repositoriesInclude: area('repositories.include', policy.repositories.include),
    repositoriesExclude: area('repositories.exclude', policy.repositories.exclude),
    tagsInclude: area('tags.include', policy.tags.include),
    tagsExclude: area('tags.exclude', policy.tags.exclude),
    syntax: choice('tags.syntax', [['glob', 'globs'], ['regex', 'regular expressions']], policy.tags.syntax),
    semver: text('tags.semver.range', policy.tags.semver?.range ?? '', { placeholder: '>=1.2 <2', class: 'mono' }),
    prerelease: checkbox('tags.semver.includePrerelease', policy.tags.semver?.includePrerelease ?? false),
    latest: number('tags.latest.count', policy.tags.latest?.count, { placeholder: 'all' }),
    latestBy: choice('tags.latest.by', [['semver', 'highest versions'], ['created', 'newest images']], policy.tags.latest?.by ?? 'semver'),
    namespace: text('rewrite.namespace', policy.rewrite.namespace ?? '', { placeholder: 'none', class: 'mono' }),
    flatten: number('rewrite.flatten', policy.rewrite.flatten, { min: -1, step: 1 }),
    override: checkbox('override', policy.override),
    platforms: text('platforms', policy.platforms.join(', '), { placeholder: 'all, or linux/amd64, linux/arm64/v8', class: 'mono' }),
    deletions: checkbox('replicateDeletions', policy.replicateDeletions),
    bandwidth: number('bandwidthKiBps', policy.bandwidthKiBps, { min: 1, placeholder: 'no limit' }),
    trigger: choice('trigger.type', [['manual', 'manual'], ['cron', 'on a schedule (cron)'], ['event', 'on registry events']], policy.trigger.type),
    schedule: text('trigger.schedule', policy.trigger.schedule ?? '', { placeholder: '0 3 * * *', class: 'mono' }),
    priority: number('priority', policy.priority, { step: 1 }),
    referrers: choice('referrers', [['all', 'all'], ['none', 'none'], ['types', 'only these artifact types']], Array.isArray(policy.referrers) ? 'types' : policy.referrers),
    referrerTypes: text('referrer-types', Array.isArray(policy.referrers) ? policy.referrers.join(', ') : '', { placeholder: 'application/spdx+json, application/vnd.in-toto+json', class: 'mono' }),
    key: area('signing-key', policy.requireSignature?.key ? [policy.requireSignature.key] : []),
  };
  c.key.rows = 5;
  c.key.placeholder = '-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----';
  const storedKey = policy.requireSignature?.key ?? '';

  const dependent = () => {
    c.schedule.disabled = c.trigger.value !== 'cron';
    c.referrerTypes.disabled = c.referrers.value !== 'types';
    c.prerelease.disabled = c.semver.value.trim() === '';
    c.latestBy.disabled = c.latest.value === '';
  };

  /** The policy as the form says, in the API's terms. A key left as it was is not sent: it keeps the source it was stored with. */
  function body() {
    const semver = c.semver.value.trim();
    /** @type {Record<string, unknown>} */
    const draft = {
      name: c.name.value.trim(),
      enabled: c.enabled.checked,
      sourceRegistryId: c.source.value,
      destinationRegistryId: c.destination.value,
      repositories: { include: lines(c.repositoriesInclude.value), exclude: lines(c.repositoriesExclude.value) },
      tags: {
        include: lines(c.tagsInclude.value),
        exclude: lines(c.tagsExclude.value),
        syntax: c.syntax.value,
        ...(semver ? { semver: { range: semver, includePrerelease: c.prerelease.checked } } : {}),
        ...(c.latest.value !== '' ? { latest: { count: c.latest.valueAsNumber, by: c.latestBy.value } } : {}),
      },
      rewrite: { namespace: c.namespace.value.trim() || null, flatten: c.flatten.value === '' ? 0 : c.flatten.valueAsNumber },
      override: c.override.checked,
      platforms: words(c.platforms.value),
      replicateDeletions: c.deletions.checked,
      bandwidthKiBps: c.bandwidth.value === '' ? null : c.bandwidth.valueAsNumber,
      trigger: c.trigger.value === 'cron' ? { type: 'cron', schedule: c.schedule.value.trim() } : { type: c.trigger.value },
      priority: c.priority.value === '' ? 0 : c.priority.valueAsNumber,
      referrers: c.referrers.value === 'types' ? words(c.referrerTypes.value) : c.referrers.value,
    };
    if (c.key.value.trim() !== storedKey.trim()) draft.requireSignature = c.key.value.trim() ? { key: c.key.value } : null;
    return draft;
  }

  /** @type {import('./fields.js').FieldGroup[]} */
  const groups = [
    ['Policy', [['name', 'name', c.name], ['enabled', 'enabled', c.enabled], ['priority', 'priority (higher runs first)', c.priority]]],
    ['Registries', [['sourceRegistryId', 'from', c.source], ['destinationRegistryId', 'to', c.destination]]],
    ['Repositories (globs one a line; ** crosses /; empty include takes every repository)', [['repositories.include', 'include', c.repositoriesInclude], ['repositories.exclude', 'exclude', c.repositoriesExclude]]],
    [
      'Tags (one a line, matched against whole tags)',
      [
        ['tags.include', 'include', c.tagsInclude],
        ['tags.exclude', 'exclude', c.tagsExclude],
        ['tags.syntax', 'patterns are', c.syntax],
        ['tags.semver.range', 'semver range', c.semver],
        ['tags.semver.includePrerelease', 'with prereleases', c.prerelease],
        ['tags.latest.count', 'only the latest', c.latest],
        ['tags.latest.by', 'by', c.latestBy],
      ],
    ],
    [
      'At the destination',
      [
        ['rewrite.namespace', 'under namespace', c.namespace],
        ['rewrite.flatten', 'drop leading path components (-1 keeps the last)', c.flatten],
        ['override', 'replace a tag that points elsewhere', c.override],
        ['replicateDeletions', 'replicate deletions', c.deletions],
      ],
    ],
    ['Transfer', [['platforms', 'platforms', c.platforms], ['bandwidthKiBps', 'KiB/s per job', c.bandwidth]]],
    ['Trigger', [['trigger.type', 'runs', c.trigger], ['trigger.schedule', 'schedule (minute hour day month weekday)', c.schedule]]],
    [
      'Referrers and signatures',
      [
        ['referrers', 'referrers copied with each image (signatures, SBOMs, attestations)', c.referrers, c.referrerTypes],
        ['requireSignature', 'copy only images signed with this key (cosign, ECDSA P-256 public key in PEM); empty: no signature required', c.key],
      ],
    ],
  ];
  const changed = () => (dependent(), onChange());
  const { element, showError } = settingsForm({ className: 'policy-form', groups, submitLabel, body, onSubmit, listeners: { oninput: changed, onchange: changed } });
  dependent();
  return { element, body, showError };
}

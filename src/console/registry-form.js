// A registry's settings in one form, new or stored. The password is write-only: the API never
// shows it, so the form never holds it; left empty on an edit, the stored one stays.

import { settingsForm } from './fields.js';
import { h } from './format.js';

/** @param {string} name @param {string} value @param {Record<string, any>} [attributes] */
const input = (name, value, attributes = {}) => /** @type {HTMLInputElement} */ (h('input', { type: 'text', name, value, ...attributes }));

/**
 * @param {any} registry a stored registry, or null for a new one
 * @param {{ submitLabel: string, onSubmit: (body: Record<string, unknown>) => Promise<void> }} options
 */
export function registryForm(registry, { submitLabel, onSubmit }) {
  const storedLogin = registry?.credentialHelper ? 'helper' : registry?.hasCredentials ? 'credentials' : 'none';
  const c = {
    name: input('name', registry?.name ?? '', { required: true }),
    url: input('url', registry?.url ?? '', { required: true, placeholder: 'registry.example.com:5000', class: 'mono' }),
    insecure: /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', name: 'insecure', checked: registry?.insecure ?? false })),
    ca: /** @type {HTMLTextAreaElement} */ (h('textarea', { name: 'ca', rows: 4, class: 'mono', placeholder: '-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----' })),
    login: /** @type {HTMLSelectElement} */ (
      h(
        'select',
        { name: 'login' },
        ...[['none', 'anonymous'], ['credentials', 'username and password'], ['helper', 'credential helper']].map(([v, label]) => h('option', { value: v, selected: v === storedLogin }, label)),
      )
    ),
    username: input('credentials.username', registry?.username ?? '', { autocomplete: 'off' }),
    // Never filled in: a stored password is not the page's to hold.
    password: input('credentials.password', '', { type: 'password', autocomplete: 'new-password', placeholder: registry?.hasCredentials ? 'unchanged' : '' }),
    helper: input('credentialHelper', registry?.credentialHelper ?? '', { placeholder: 'ecr-login', class: 'mono' }),
    rate: input('requestsPerSecond', registry?.requestsPerSecond ?? '', { type: 'number', min: 0, step: 'any', placeholder: 'no limit' }),
  };
  c.ca.value = registry?.ca ?? '';

  const dependent = () => {
    c.username.disabled = c.password.disabled = c.login.value !== 'credentials';
    c.helper.disabled = c.login.value !== 'helper';
  };

  /** The registry as the form says, in the API's terms; on an edit, the login only when it changed. */
  function body() {
    /** @type {Record<string, unknown>} */
    const draft = {
      name: c.name.value.trim(),
      url: c.url.value.trim(),
      insecure: c.insecure.checked,
      ca: c.ca.value.trim() ? c.ca.value : null,
      requestsPerSecond: c.rate.value === '' ? null : c.rate.valueAsNumber,
    };
    const username = c.username.value.trim();
    if (c.login.value === 'credentials') {
      // Without a new password the stored one stays: nothing to send unless the user changed.
      if (c.password.value || storedLogin !== 'credentials' || username !== registry.username) {
        draft.credentials = c.password.value ? { username, password: c.password.value } : { username };
      }
    } else if (c.login.value === 'helper') draft.credentialHelper = c.helper.value.trim();
    else if (registry && storedLogin !== 'none') Object.assign(draft, { credentials: null, credentialHelper: null });
    return draft;
  }

  /** @type {import('./fields.js').FieldGroup[]} */
  const groups = [
    ['Registry', [['name', 'name', c.name], ['url', 'host (as in image references)', c.url], ['requestsPerSecond', 'requests per second per node', c.rate]]],
    ['Login', [['login', 'logs in', c.login], ['credentials.username', 'username', c.username], ['credentials.password', 'password', c.password], ['credentialHelper', 'credential helper', c.helper]]],
    ['TLS', [['insecure', 'skip TLS verification, allow plain HTTP', c.insecure], ['ca', 'CA certificates trusted besides the system ones (PEM)', c.ca]]],
  ];
  const { element, showError } = settingsForm({ className: 'registry-form', groups, submitLabel, body, onSubmit, listeners: { onchange: dependent } });
  dependent();
  return { element, showError };
}

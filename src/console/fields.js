// What the console's forms share: fieldsets of labelled fields, each named by the API's path
// for it, a submit that sends the form's body, and the API's refusals shown at the field they name.

import { h } from './format.js';

/**
 * One labelled setting; `path` is the API's name for it, where its errors are shown.
 * @param {string} path @param {string} label @param {...(Node | string)} controls
 */
export const field = (path, label, ...controls) =>
  h('div', { class: 'field', 'data-field': path }, h('label', null, h('span', { class: 'label' }, label), ...controls), h('span', { class: 'field-error', role: 'alert' }));

/**
 * Errors at a form's fields, or in `message` when no field of it is the one named.
 * @param {HTMLElement} form @param {HTMLElement} message
 */
export function fieldErrors(form, message) {
  const clear = () => {
    message.textContent = '';
    for (const slot of form.querySelectorAll('.field-error')) slot.textContent = '';
    for (const wrong of form.querySelectorAll('.field.invalid')) wrong.classList.remove('invalid');
  };
  /**
   * At the field the API names (`body.tags.include.2` at the tag patterns): the longest
   * leading part of the path that names a field of the form.
   * @param {string | undefined} path @param {string} text
   */
  const show = (path, text) => {
    const parts = (path ?? '').replace(/^body\.?/, '').split('.').filter(Boolean);
    for (; parts.length; parts.pop()) {
      const slot = form.querySelector(`.field[data-field="${CSS.escape(parts.join('.'))}"]`);
      if (!slot) continue;
      slot.classList.add('invalid');
      /** @type {HTMLElement} */ (slot.querySelector('.field-error')).textContent = text;
      return;
    }
    message.textContent = text;
  };
  return { clear, show };
}

/** @typedef {[string, Array<[string, string, ...HTMLElement[]]>]} FieldGroup A legend and its fields: path, label, controls. */

/**
 * A settings form: a fieldset per group, a submit button and a message line. Submitting clears
 * the errors shown and hands `body()` to `onSubmit`; `showError` puts a refusal at its field.
 * @param {{ className: string, groups: FieldGroup[], submitLabel: string, body: () => Record<string, unknown>, onSubmit: (body: Record<string, unknown>) => Promise<void>, listeners?: Record<string, () => void> }} options
 */
export function settingsForm({ className, groups, submitLabel, body, onSubmit, listeners = {} }) {
  const message = h('span', { class: 'message', role: 'status' });
  /** @param {SubmitEvent} event */
  async function submit(event) {
    event.preventDefault();
    errors.clear();
    await onSubmit(body());
  }
  const element = h(
    'form',
    { class: `panel ${className} settings-form`, novalidate: true, onsubmit: submit, ...listeners },
    ...groups.map(([legend, fields]) => h('fieldset', null, h('legend', null, legend), ...fields.map(([path, label, ...controls]) => field(path, label, ...controls)))),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, submitLabel), message),
  );
  const errors = fieldErrors(element, message);
  return { element, showError: errors.show };
}

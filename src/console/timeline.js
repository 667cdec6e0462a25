// The job's transitions as a table: when each happened, the event that caused it, and how
// long the job stayed in the state it entered (with a bar to compare phases at a glance).

import { clock, duration, eventName, h } from './format.js';

/** @typedef {{ seq?: number, from: string | null, to: string, event: string, at: string, provisional?: boolean }} Step */

/** Time spent in each step's target state; the last one runs until `end` (null: unknown). @param {Step[]} steps @param {number | null} end */
export function stepDurations(steps, end) {
  return steps.map((step, i) => {
    const next = steps[i + 1];
    const until = next ? Date.parse(next.at) : end;
    return until === null ? null : Math.max(0, until - Date.parse(step.at));
  });
}

/**
 * @param {{ ended: Set<string>, onSelect?: (index: number) => void }} options `ended`: the final states, shown without a time spent in them
 */
export function timeline({ ended, onSelect }) {
  const body = h('tbody');
  const totals = h('div', { class: 'phase-totals' });
  const element = h(
    'section',
    { class: 'panel timeline' },
    h('h2', null, 'Timeline'),
    totals,
    h('div', { class: 'table-scroll' }, h('table', { class: 'timeline-table' }, h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'at'), h('th', null, 'from → to'), h('th', null, 'event'), h('th', { class: 'num' }, 'time in state'))), body)),
  );
  /** @type {Step[]} */
  let steps = [];
  let selected = -1;
  let live = false;

  const draw = () => {
    const end = live ? Date.now() : null;
    const durations = stepDurations(steps, end);
    const longest = Math.max(1, ...durations.map((d) => d ?? 0));
    body.replaceChildren(
      ...steps.map((step, i) => {
        const last = i === steps.length - 1;
        const ms = durations[i];
        const isFinal = ended.has(step.to);
        const row = h(
          'tr',
          {
            class: [i === selected ? 'selected' : '', last && live ? 'ongoing' : '', step.provisional ? 'provisional' : ''].filter(Boolean).join(' ') || null,
            'data-index': i,
            'data-to': step.to,
            onclick: onSelect ? () => onSelect(i) : null,
          },
          h('td', { class: 'num' }, i + 1),
          h('td', { class: 'mono' }, clock(step.at)),
          h('td', { class: 'mono' }, step.from ? h('span', { class: 'muted' }, `${step.from} → `) : '', h('strong', null, step.to)),
          h('td', { class: 'mono', title: step.event }, eventName(step.event)),
          h(
            'td',
            { class: 'num duration' },
            isFinal && last ? h('span', { class: 'muted' }, 'final') : h('span', null, duration(ms), last && live ? '…' : ''),
            isFinal && last ? '' : h('span', { class: 'bar', style: `width:${Math.round(((ms ?? 0) / longest) * 100)}%` }),
          ),
        );
        return row;
      }),
    );
    // Total time per state, in flow order of first entry.
    /** @type {Map<string, number>} */
    const sums = new Map();
    steps.forEach((step, i) => {
      if (ended.has(step.to)) return;
      sums.set(step.to, (sums.get(step.to) ?? 0) + (durations[i] ?? 0));
    });
    totals.replaceChildren(...[...sums].map(([state, ms]) => h('span', { class: 'chip', 'data-state': state }, h('span', { class: 'mono' }, state), ' ', duration(ms))));
    const row = selected >= 0 ? body.children[selected] : null;
    row?.scrollIntoView?.({ block: 'nearest' });
  };

  const ticker = setInterval(() => live && steps.length && draw(), 1000);

  return {
    element,
    /** @param {Step[]} next @param {{ live: boolean }} options */
    render(next, options) {
      steps = next;
      live = options.live;
      draw();
    },
    /** @param {number} index */
    select(index) {
      selected = index;
      draw();
    },
    dispose: () => clearInterval(ticker),
  };
}

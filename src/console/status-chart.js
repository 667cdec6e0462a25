// An execution's jobs by status over time. Drawn from each job's created, started and
// finished times: the job list carries no per-job history, so a retried job counts as
// running from its first start.

import { get } from './api.js';
import { h } from './format.js';
import { stackedChart } from './plot.js';

const JOBS = 1000;

/** @param {any} job @param {number} t @param {Set<string>} ended */
function statusAt(job, t, ended) {
  const [created, started, finished] = [job.createdAt, job.startedAt, job.finishedAt].map((at) => (at ? Date.parse(at) : null));
  if (created === null || t < created) return undefined;
  if (finished !== null && t >= finished && ended.has(job.status)) return job.status;
  if (started !== null && t >= started) return ended.has(job.status) ? 'running' : job.status;
  return 'pending';
}

/** @param {string} executionId @param {{ jobStatuses: string[], ended: Set<string> }} vocabulary */
export function statusChart(executionId, { jobStatuses, ended }) {
  const plot = h('div', { class: 'status-plot' });
  const legend = h('div', { class: 'legend' }, ...jobStatuses.map((status) => h('span', null, h('span', { class: `swatch status-${status}` }), status)));
  const element = h('section', { class: 'panel execution-chart' }, h('h2', null, 'Jobs by status over time'), plot, legend);

  /** @param {any} execution */
  async function load(execution) {
    const { items } = await get(`/jobs?${new URLSearchParams({ executionId, limit: String(JOBS) })}`);
    const start = Date.parse(execution.createdAt);
    const changes = items.flatMap((/** @type {any} */ job) => [job.createdAt, job.startedAt, job.finishedAt]).filter(Boolean).map((at) => Date.parse(at));
    const last = Math.max(start, ...changes);
    // An ended execution's last counts are held a little past its end, or they would have no width.
    const end = execution.finishedAt ? last + Math.max(1_000, (last - start) / 10) : Date.now();
    const times = [...new Set([start, ...changes.filter((t) => t > start && t < end), end])].sort((a, b) => a - b);
    const layers = jobStatuses.map((name) => ({ name, counts: times.map((t) => items.filter((/** @type {any} */ job) => statusAt(job, t, ended) === name).length) }));
    plot.replaceChildren(stackedChart(times, layers, 'status-chart', 'jobs by status over time'));
  }

  return { element, load };
}

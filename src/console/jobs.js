// The home page (executions, jobs and nodes), an execution's page (its jobs) and a node's page
// (the jobs it holds), kept current by the service's job events.

import { ApiError, get, post, subscribe } from './api.js';
import { badge, bytes, duration, h, progressSummary, shortId, when } from './format.js';
import { policyNames } from './names.js';
import { statusChart } from './status-chart.js';
import { vocabulary } from './vocabulary.js';

const PAGE = 100;
const POLL_MS = 5_000;

/** @param {string} label @param {string[]} values @param {string} value @param {(value: string) => void} onChange */
function select(label, values, value, onChange, name = label) {
  const element = /** @type {HTMLSelectElement} */ (
    h('select', { name, onchange: () => onChange(element.value) }, h('option', { value: '' }, `any ${label}`), ...values.map((v) => h('option', { value: v, selected: v === value }, v)))
  );
  return element;
}

/** A debounced call. @param {() => void} fn @param {number} ms */
function debounce(fn, ms) {
  let timer = 0;
  const run = () => {
    clearTimeout(timer);
    timer = window.setTimeout(fn, ms);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}

/** @param {any} job */
function progressCell(job) {
  const p = progressSummary(job.progress);
  const pct = p.total ? Math.round((p.done / p.total) * 100) : job.status === 'finished' ? 100 : 0;
  return h(
    'div',
    { class: 'progress-cell' },
    h('div', { class: 'meter small', title: `${p.done} of ${p.total} tags` }, h('span', { style: `width:${pct}%` })),
    h('span', { class: 'mono' }, `${p.done}/${p.total} tags`),
    h('span', { class: 'muted' }, `${p.referrers ? ` · ${p.referrers} referrers` : ''} · ${p.blobsCopied}+${p.blobsMounted} blobs · ${bytes(p.bytes)}`),
  );
}

/** @param {any} job */
function jobRow(job) {
  return h(
    'tr',
    { 'data-job': job.id, 'data-status': job.status },
    h('td', null, h('a', { href: `#/jobs/${job.id}`, class: 'mono' }, shortId(job.id))),
    h('td', null, job.operation),
    h('td', { class: 'mono repo', title: `${job.source ?? ''} → ${job.destination}` }, job.source ? `${job.source} → ` : '', h('strong', null, job.destination)),
    h('td', null, badge(job.status)),
    h('td', { class: 'mono' }, job.phase ?? ''),
    h('td', null, progressCell(job)),
    h('td', { class: 'num' }, job.attempt || ''),
    h('td', { class: 'mono muted', title: job.node ?? '' }, nodeName(job.node)),
    h('td', { class: 'muted' }, when(job.updatedAt)),
  );
}

/** Which policy an execution ran, by name. @param {any} execution @param {Map<string, string>} policies */
function policyCell(execution, policies) {
  if (!execution.policyId) return '—';
  const name = policies.get(execution.policyId);
  return name ? h('a', { href: `#/policies/${execution.policyId}` }, name) : h('span', { class: 'muted' }, 'removed');
}

/** @param {any} execution @param {Map<string, string>} policies */
function executionRow(execution, policies) {
  const counts = Object.entries(execution.jobs ?? {}).filter(([, n]) => n > 0);
  const took = execution.finishedAt ? Date.parse(execution.finishedAt) - Date.parse(execution.createdAt) : null;
  return h(
    'tr',
    { 'data-execution': execution.id, 'data-status': execution.status },
    h('td', null, h('a', { href: `#/executions/${execution.id}`, class: 'mono' }, shortId(execution.id))),
    h('td', { 'data-policy': execution.policyId ?? '' }, policyCell(execution, policies)),
    h('td', null, execution.trigger),
    h('td', null, badge(execution.status)),
    h('td', null, ...counts.map(([status, n]) => h('span', { class: `count status-${status}` }, `${n} ${status}`))),
    h('td', { class: 'muted' }, when(execution.createdAt)),
    h('td', { class: 'num' }, took === null ? '…' : duration(took)),
  );
}

const JOB_HEAD = ['job', 'op', 'source → destination', 'status', 'phase', 'progress', 'attempt', 'node', 'updated'];
const NODE_HEAD = ['node', 'host', 'pid', 'started', 'last heartbeat', 'jobs held', ''];
const EXECUTION_HEAD = ['execution', 'policy', 'trigger', 'status', 'jobs', 'created', 'took'];

/** @param {string[]} head @param {HTMLElement} body */
const table = (head, body) => h('div', { class: 'table-scroll' }, h('table', { class: 'list' }, h('thead', null, h('tr', null, ...head.map((t) => h('th', null, t)))), body));

/**
 * A live list of jobs, filtered by status and execution, or the jobs of one node.
 * @param {{ statuses: string[], executionId?: string, node?: string, executions?: () => any[], policies?: () => Map<string, string> }} options
 */
function jobList({ statuses, executionId, node, executions, policies }) {
  const filter = { status: '', executionId: executionId ?? '', node: node ?? '' };
  const body = h('tbody');
  const count = h('span', { class: 'muted count-label' });
  const executionFilter = executionId || node
    ? null
    : select('execution', [], '', (value) => {
        filter.executionId = value;
        void load();
      }, 'executionId');
  const element = h(
    'section',
    { class: 'panel jobs' },
    h('div', { class: 'panel-head' }, h('h2', null, 'Jobs'), count, h('div', { class: 'filters' }, select('status', statuses, '', (value) => ((filter.status = value), void load()), 'jobStatus'), executionFilter)),
    table(JOB_HEAD, body),
  );
  /** @type {Map<string, any>} */
  const shown = new Map();

  async function load() {
    const { items, total } = await get(`/jobs?${new URLSearchParams({ ...(filter.status ? { status: filter.status } : {}), ...(filter.executionId ? { executionId: filter.executionId } : {}), ...(filter.node ? { node: filter.node } : {}), limit: String(PAGE) })}`);
    shown.clear();
    for (const job of items) shown.set(job.id, job);
    body.replaceChildren(...(items.length ? items.map(jobRow) : [h('tr', null, h('td', { colspan: JOB_HEAD.length, class: 'muted empty' }, 'No jobs.'))]));
    count.textContent = `${items.length} of ${total}`;
    if (executionFilter && executions) {
      const current = executionFilter.value;
      const names = policies?.() ?? new Map();
      executionFilter.replaceChildren(h('option', { value: '' }, 'any execution'), ...executions().map((e) => h('option', { value: e.id, selected: e.id === current }, `${names.get(e.policyId) ?? 'one-off'} · ${when(e.createdAt)} · ${e.status}`)));
    }
  }

  const reload = debounce(() => void load().catch(() => {}), 250);

  /** Applies a job event in place when the job is listed and still matches; otherwise reloads. @param {any} change */
  function apply(change) {
    const job = shown.get(change.jobId);
    const matches = (!filter.status || filter.status === change.status) && (!filter.executionId || filter.executionId === change.executionId) && (!filter.node || filter.node === change.node);
    if (!job || !matches) {
      if (matches || job) reload();
      return;
    }
    Object.assign(job, { status: change.status, phase: change.phase, progress: change.progress, error: change.error, node: change.node, updatedAt: new Date().toISOString() });
    const row = body.querySelector(`tr[data-job="${CSS.escape(job.id)}"]`);
    const fresh = jobRow(job);
    fresh.classList.add('changed');
    row?.replaceWith(fresh);
  }

  return { element, load, reload, apply, dispose: () => reload.cancel() };
}

/** A node's id is host:pid:suffix; the list shows the host and pid. @param {string | null | undefined} id */
function nodeName(id) {
  return id ? id.split(':').slice(0, 2).join(':') : '';
}

/** What a node is to the one serving the page. @param {any} node @param {string} self */
const nodeRemarks = (node, self) => [node.id === self ? 'this node' : '', node.draining ? 'draining' : ''].filter(Boolean).join(', ');

/** The live nodes sharing the database, each linked to its page. */
function nodeList() {
  const body = h('tbody');
  const count = h('span', { class: 'muted count-label' });
  const element = h('section', { class: 'panel nodes' }, h('div', { class: 'panel-head' }, h('h2', null, h('a', { href: '#/nodes' }, 'Nodes')), count), table(NODE_HEAD, body));
  async function load() {
    const { self, items } = await get('/nodes?limit=1000');
    body.replaceChildren(
      ...items.map((/** @type {any} */ node) =>
        h(
          'tr',
          { 'data-node': node.id },
          h('td', { title: node.id }, h('a', { class: 'mono', href: `#/nodes/${encodeURIComponent(node.id)}` }, nodeName(node.id))),
          h('td', null, node.host),
          h('td', { class: 'num' }, String(node.pid)),
          h('td', { class: 'muted' }, when(node.startedAt)),
          h('td', { class: 'muted' }, when(node.heartbeatAt)),
          h('td', { class: 'num' }, String(node.jobsHeld)),
          h('td', { class: 'muted' }, nodeRemarks(node, self)),
        ),
      ),
    );
    count.textContent = `${items.length} live`;
  }
  return { element, load };
}

/** `#/nodes`: the live nodes, their heartbeats kept current. @param {HTMLElement} view */
export async function mountNodes(view) {
  const nodes = nodeList();
  view.replaceChildren(nodes.element);
  await nodes.load();
  const poll = setInterval(() => void nodes.load().catch(() => {}), POLL_MS);
  return () => clearInterval(poll);
}

/** `#/nodes/:id`: one node and the jobs it holds or held last. @param {HTMLElement} view @param {{ id: string }} params */
export async function mountNode(view, { id }) {
  const { jobStatuses } = await vocabulary();
  const summary = h('div', { class: 'execution-summary' });
  const jobs = jobList({ statuses: jobStatuses, node: id });
  async function loadNode() {
    const { self, items } = await get('/nodes?limit=1000');
    const node = items.find((/** @type {any} */ n) => n.id === id);
    summary.replaceChildren(
      ...(node
        ? [
            badge(node.draining ? 'draining' : 'live'),
            h('span', null, `host ${node.host}, pid ${node.pid}`),
            h('span', null, `started ${when(node.startedAt)}`),
            h('span', { 'data-heartbeat': '' }, `last heartbeat ${when(node.heartbeatAt)}`),
            h('span', { 'data-held': String(node.jobsHeld) }, `${node.jobsHeld} jobs held`),
            nodeRemarks(node, self) ? h('span', { class: 'muted' }, nodeRemarks(node, self)) : '',
          ]
        : [badge('gone'), h('span', { class: 'muted' }, 'no heartbeat lately: its jobs are taken over by the live nodes')]),
    );
  }
  view.replaceChildren(
    h('header', { class: 'page-header' }, h('div', null, h('div', { class: 'crumbs' }, h('a', { href: '#/nodes' }, 'Nodes'), ' / ', nodeName(id)), h('h1', null, 'Node ', h('span', { class: 'mono' }, id)), summary)),
    jobs.element,
  );
  await Promise.all([loadNode(), jobs.load()]);
  const refresh = debounce(() => void loadNode().catch(() => {}), 400);
  return followJobs(jobs, refresh, () => true);
}

/** `#/`: executions, jobs and nodes. @param {HTMLElement} view */
export async function mountHome(view) {
  const { jobStatuses, executionStatuses } = await vocabulary();
  const filter = { status: '' };
  /** @type {any[]} */
  let executions = [];
  /** @type {Map<string, string>} */
  let policies = new Map();
  const body = h('tbody');
  const count = h('span', { class: 'muted count-label' });
  const jobs = jobList({ statuses: jobStatuses, executions: () => executions, policies: () => policies });
  const nodes = nodeList();

  async function loadExecutions() {
    const [{ items, total }, names] = await Promise.all([get(`/executions?${new URLSearchParams({ ...(filter.status ? { status: filter.status } : {}), limit: '50' })}`), policyNames()]);
    executions = items;
    policies = names;
    body.replaceChildren(...(items.length ? items.map((execution) => executionRow(execution, policies)) : [h('tr', null, h('td', { colspan: EXECUTION_HEAD.length, class: 'muted empty' }, 'No executions yet: trigger a policy.'))]));
    count.textContent = `${items.length} of ${total}`;
  }

  view.replaceChildren(
    h(
      'section',
      { class: 'panel executions' },
      h('div', { class: 'panel-head' }, h('h2', null, 'Executions'), count, h('div', { class: 'filters' }, select('status', executionStatuses, '', (value) => ((filter.status = value), void loadExecutions()), 'executionStatus'))),
      table(EXECUTION_HEAD, body),
    ),
    jobs.element,
    nodes.element,
  );
  await Promise.all([loadExecutions(), jobs.load(), nodes.load()]);

  const reloadPage = debounce(() => void Promise.all([loadExecutions(), nodes.load()]).catch(() => {}), 400);
  return followJobs(jobs, reloadPage, () => true);
}

/** `#/executions/:id`: one execution and its jobs. @param {HTMLElement} view @param {{ id: string }} params */
export async function mountExecution(view, { id }) {
  const words = await vocabulary();
  const { jobStatuses, active, retryable } = words;
  const summary = h('div', { class: 'execution-summary' });
  const chart = statusChart(id, words);
  const message = h('span', { class: 'message' });
  /** @type {any} */
  let execution = await get(`/executions/${encodeURIComponent(id)}`);
  const policies = await policyNames();
  const stopButton = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', onclick: () => act('stop') }, 'STOP'));
  const retryButton = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', onclick: () => act('retry') }, 'RETRY'));
  const jobs = jobList({ statuses: jobStatuses, executionId: id });

  const render = () => {
    summary.replaceChildren(
      badge(execution.status),
      h('span', { 'data-policy': execution.policyId ?? '' }, 'policy ', policyCell(execution, policies)),
      h('span', null, `trigger ${execution.trigger}`),
      h('span', null, `created ${when(execution.createdAt)}`),
      execution.finishedAt ? h('span', null, `took ${duration(Date.parse(execution.finishedAt) - Date.parse(execution.createdAt))}`) : '',
      ...Object.entries(execution.jobs ?? {}).filter(([, n]) => n > 0).map(([status, n]) => h('span', { class: `count status-${status}` }, `${n} ${status}`)),
      execution.tagsFailed ? h('span', { class: 'count status-error', 'data-tags-failed': '' }, `${execution.tagsFailed} tags failed`) : '',
    );
    stopButton.disabled = !active.has(execution.status);
    // A finished execution whose jobs left tags failed can be retried: only what is missing is copied.
    retryButton.disabled = !retryable.has(execution.status) && !execution.tagsFailed;
  };

  /** @param {'stop' | 'retry'} action */
  async function act(action) {
    stopButton.disabled = retryButton.disabled = true;
    try {
      await post(`/executions/${encodeURIComponent(id)}/${action}`);
      message.textContent = '';
    } catch (error) {
      message.textContent = error instanceof ApiError ? error.message : String(error);
    }
    execution = await get(`/executions/${encodeURIComponent(id)}`);
    render();
  }

  view.replaceChildren(
    h(
      'header',
      { class: 'page-header' },
      h('div', null, h('div', { class: 'crumbs' }, h('a', { href: '#/' }, 'Executions'), ' / ', policies.has(execution.policyId) ? `execution of ${policies.get(execution.policyId)}` : `execution ${shortId(id)}`), h('h1', null, 'Execution ', h('span', { class: 'mono' }, id)), summary, message),
      h('div', { class: 'actions' }, stopButton, retryButton),
    ),
    chart.element,
    jobs.element,
  );
  render();
  await Promise.all([jobs.load(), chart.load(execution)]);
  const refresh = debounce(async () => {
    execution = await get(`/executions/${encodeURIComponent(id)}`).catch(() => execution);
    render();
    await chart.load(execution).catch(() => {});
  }, 300);
  return followJobs(jobs, refresh, (change) => change.executionId === id);
}

/**
 * Keeps a job list and its page live: every job change (of interest) updates the list and
 * refreshes the page. Jobs queued without the scheduler (a one-off copy) are not announced,
 * so the list is also reloaded now and then. Returns the page's disposer.
 * @param {{ apply: (change: any) => void, reload: () => void, dispose: () => void }} jobs
 * @param {(() => void) & { cancel: () => void }} refresh
 * @param {(change: any) => boolean} relevant
 */
function followJobs(jobs, refresh, relevant) {
  const events = subscribe('/events', {
    onEvent: (type, data) => {
      if (type !== 'job' || !relevant(data)) return;
      jobs.apply(data);
      refresh();
    },
  });
  const poll = setInterval(() => {
    refresh();
    jobs.reload();
  }, POLL_MS);
  return () => {
    clearInterval(poll);
    events.close();
    jobs.dispose();
    refresh.cancel();
  };
}

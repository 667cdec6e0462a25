// One job: its statechart lit up live (or replayed from history once it has ended), a
// replication's batches on the batch machine's chart (how many are in each state), the
// timeline of its transitions, the blobs it transfers now, its log tail, STOP and RETRY.

import { all, ApiError, get, post, subscribe } from './api.js';
import { statechart } from './graph.js';
import { badge, bytes, clock, eventName, h, progressSummary, shortId } from './format.js';
import { registryOf } from './names.js';
import { transferRate } from './rate.js';
import { timeline } from './timeline.js';
import { vocabulary } from './vocabulary.js';

const LOG_TAIL = 200;

/** `sha256:9b599590b196…` in log lines: the full digest is in the line's title. @param {string} text */
const shortDigests = (text) => text.replace(/(sha256:[0-9a-f]{12})[0-9a-f]{52}/g, '$1…');

/** @type {Map<string, Promise<any>>} */
const graphs = new Map();
/** The layout of a machine, fetched once per page load. @param {string} name */
export function machineGraph(name) {
  if (!graphs.has(name)) {
    const request = get(`/machines/${encodeURIComponent(name)}/graph`);
    request.catch(() => graphs.delete(name));
    graphs.set(name, request);
  }
  return /** @type {Promise<any>} */ (graphs.get(name));
}

/** `running.pullManifest` for a job: the path its history uses. @param {{ status: string, phase: string | null }} job @param {Set<string>} ended */
const statePath = (job, ended) => (job.phase && !ended.has(job.status) ? `${job.status}.${job.phase}` : job.status);

/** Highlight colour of a state from the status it stands for. @param {string | null} path */
const toneOf = (path) => (path ?? 'running').split('.')[0] ?? 'running';

/**
 * The policy that made a job and the registries it copies between, by name.
 * @param {any} job
 */
async function origin(job) {
  const [execution, registries] = await Promise.all([get(`/executions/${encodeURIComponent(job.executionId)}`), all('/registries')]);
  const policy = execution.policyId ? await get(`/policies/${encodeURIComponent(execution.policyId)}`).catch(() => null) : null;
  const name = (/** @type {string | null} */ reference) => (reference ? registryOf(reference, registries)?.name : undefined);
  const [from, to] = [name(job.source), name(job.destination)];
  const parts = [
    policy ? h('span', { 'data-origin': 'policy' }, 'policy ', h('a', { href: `#/policies/${policy.id}` }, policy.name)) : execution.policyId ? 'its policy was removed' : 'no policy: a one-off copy',
    from ? h('span', { 'data-origin': 'source' }, `from ${from}`) : '',
    to ? h('span', { 'data-origin': 'destination' }, `to ${to}`) : '',
  ];
  return { parts, execution: policy ? `execution of ${policy.name}` : undefined };
}

/**
 * @param {HTMLElement} view
 * @param {{ id: string }} params
 * @returns {Promise<() => void>}
 */
export async function mountJobPage(view, { id }) {
  view.replaceChildren(h('p', { class: 'muted' }, 'Loading job…'));
  const initial = await get(`/jobs/${encodeURIComponent(id)}`);
  const machine = initial.operation === 'delete' ? 'deletion' : 'replication';
  const [graph, batchGraph, { active, retryable, ended }] = await Promise.all([machineGraph(machine), machine === 'replication' ? machineGraph('batch') : null, vocabulary()]);

  /** @type {any} */
  let job = initial;
  /** @type {import('./timeline.js').Step[]} */
  let history = initial.history ?? [];
  /** @type {import('./timeline.js').Step[]} */
  let provisional = [];
  /** @type {Map<string, { digest: string, size: number, bytes: number, state: string, how?: string, at: number }>} */
  const blobs = new Map();
  /** @type {any[]} */
  let logs = [];
  let lastLogSeq = 0;
  let replaying = false;
  let step = 0;
  let disposed = false;

  // ---- layout -------------------------------------------------------------------------
  const chart = statechart(graph);
  const batchChart = batchGraph ? statechart(batchGraph) : null;
  const status = h('span', { class: 'job-status' });
  const phase = h('span', { class: 'job-phase mono' });
  const connection = h('span', { class: 'connection', title: 'live updates' });
  const held = h('span', { class: 'node mono' });
  const names = h('span', { class: 'job-origin' });
  const executionCrumb = h('a', { href: `#/executions/${job.executionId}` }, `execution ${shortId(job.executionId)}`);
  const message = h('span', { class: 'message', role: 'status' });
  const stopButton = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', 'data-action': 'stop', onclick: () => act('stop') }, 'STOP'));
  const retryButton = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', 'data-action': 'retry', onclick: () => act('retry') }, 'RETRY'));
  const progress = h('dl', { class: 'progress-summary' });
  const errorBox = h('div', { class: 'job-error', hidden: true });

  const range = /** @type {HTMLInputElement} */ (h('input', { type: 'range', min: 0, max: 0, value: 0, 'aria-label': 'transition', oninput: () => showStep(Number(range.value)) }));
  const stepLabel = h('span', { class: 'step-label mono' });
  const stepButton = (/** @type {string} */ label, /** @type {string} */ title, /** @type {() => number} */ target) =>
    h('button', { type: 'button', class: 'step', title, 'aria-label': title, onclick: () => showStep(target()) }, label);
  const scrubber = h(
    'div',
    { class: 'scrubber', hidden: true },
    h('span', { class: 'scrubber-title' }, 'Replay'),
    stepButton('|◀', 'first transition', () => 0),
    stepButton('◀', 'previous transition', () => step - 1),
    range,
    stepButton('▶', 'next transition', () => step + 1),
    stepButton('▶|', 'last transition', () => history.length - 1),
    stepLabel,
  );

  // Fit to the width by default; actual size (scrolling) to read a large chart closely.
  const chartBox = h('div', { class: 'chart', 'data-job': job.id }, chart.element);
  chart.element.setAttribute('width', String(graph.width));
  chart.element.setAttribute('height', String(graph.height));
  const zoomButton = h('button', {
    type: 'button',
    title: 'toggle between fitting the width and actual size',
    onclick: () => {
      const actual = chartBox.classList.toggle('actual-size');
      zoomButton.textContent = actual ? 'fit to width' : 'actual size';
    },
  }, 'actual size');
  const steps = timeline({ ended, onSelect: (i) => replaying && showStep(i) });
  const rate = transferRate();
  const blobList = h('ul', { class: 'blobs' });
  const logList = h('ol', { class: 'logs mono' });

  view.replaceChildren(
    h(
      'header',
      { class: 'page-header' },
      h(
        'div',
        null,
        h('div', { class: 'crumbs' }, h('a', { href: '#/' }, 'Jobs'), ' / ', executionCrumb, ' / ', `job ${shortId(job.id)}`),
        h('h1', null, h('span', { class: 'op' }, job.operation), ' ', job.source ? h('span', { class: 'mono' }, job.source, ' → ') : '', h('span', { class: 'mono' }, job.destination)),
        h('div', { class: 'job-meta' }, names, status, phase, held, connection, message),
      ),
      h('div', { class: 'actions' }, stopButton, retryButton),
    ),
    errorBox,
    h('section', { class: 'panel chart-panel' }, h('div', { class: 'chart-tools' }, zoomButton), chartBox, scrubber),
    batchChart
      ? h('section', { class: 'panel chart-panel batches' }, h('h2', null, 'Batches under way', h('span', { class: 'muted' }, ' · the path each batch of tags takes; a number says how many are in a state')), h('div', { class: 'chart' }, batchChart.element))
      : '',
    h(
      'div',
      { class: 'columns' },
      steps.element,
      h(
        'div',
        { class: 'side' },
        h('section', { class: 'panel' }, h('h2', null, 'Progress'), progress),
        rate.element,
        h('section', { class: 'panel' }, h('h2', null, 'Blob transfers'), blobList),
        h('section', { class: 'panel' }, h('h2', null, 'Log'), logList),
      ),
    ),
  );

  // ---- rendering ------------------------------------------------------------------------
  let chartMarked = false;
  /** @param {string | null} stateId @param {string} [tone] */
  const highlight = (stateId, tone) => {
    const resolved = chart.resolve(stateId);
    chart.setCurrent(resolved, tone ?? toneOf(resolved?.slice(graph.machine.length + 1) ?? null));
    if (resolved) chart.visit(resolved);
    if (!chartMarked && resolved) {
      chartMarked = true;
      performance.mark('ferry:chart');
    }
  };

  const renderHeader = () => {
    status.replaceChildren(badge(job.status));
    phase.textContent = job.phase ? `phase ${job.phase}${job.attempt ? ` · attempt ${job.attempt}` : ''}` : '';
    held.textContent = job.node ? `${active.has(job.status) ? 'on' : 'ran on'} node ${job.node}` : '';
    stopButton.disabled = !active.has(job.status);
    const p = progressSummary(job.progress);
    retryButton.disabled = !retryable.has(job.status) && !(job.status === 'finished' && p.failed > 0);
    progress.replaceChildren(
      h('dt', null, 'tags'), h('dd', { 'data-progress': 'tags' }, `${p.done} / ${p.total}${p.failed ? ` (${p.failed} failed)` : ''}${p.refused ? ` (${p.refused} refused: no verified signature)` : ''}`),
      h('dt', null, 'referrers'), h('dd', { 'data-progress': 'referrers' }, `${p.referrers} ${job.operation === 'delete' ? 'deleted' : 'copied'}`),
      h('dt', null, 'blobs'), h('dd', { 'data-progress': 'blobs' }, `${p.blobsCopied} copied + ${p.blobsMounted} mounted`),
      h('dt', null, 'bytes'), h('dd', { 'data-progress': 'bytes' }, bytes(p.bytes)),
      h('dt', null, 'started'), h('dd', null, clock(job.startedAt)),
      h('dt', null, 'finished'), h('dd', null, clock(job.finishedAt)),
    );
    rate.follow(job, active.has(job.status));
    errorBox.hidden = !job.error;
    errorBox.textContent = job.error ? `${job.error.code ?? 'error'}: ${job.error.message}` : '';
  };

  /** The timeline's rows: the stored history plus live transitions not stored yet. */
  const rows = () => [...history, ...provisional];

  /** Edges of the current attempt up to (and with) step `index`: a retry starts over at `pending`. */
  const edgesUpTo = (/** @type {number} */ index) => {
    const all = rows();
    let start = 0;
    for (let i = 0; i <= index; i++) if (all[i]?.to === 'pending') start = i;
    /** @type {string[]} */
    const ids = [];
    for (let i = start + 1; i <= index; i++) {
      const row = all[i];
      if (!row) continue;
      const edge = chart.edgeFor(chart.resolve(row.from), chart.resolve(row.to), row.event);
      if (edge) ids.push(edge.id);
    }
    return ids;
  };

  const renderLive = () => {
    steps.render(rows(), { live: active.has(job.status) });
  };

  /** @param {number} index */
  const showStep = (index) => {
    const all = rows();
    if (!all.length) return;
    step = Math.max(0, Math.min(all.length - 1, index));
    range.value = String(step);
    const row = /** @type {import('./timeline.js').Step} */ (all[step]);
    const edges = edgesUpTo(step);
    chart.clearTaken();
    chart.take(edges);
    const own = step > 0 ? chart.edgeFor(chart.resolve(row.from), chart.resolve(row.to), row.event) : undefined;
    chart.setStep(own ? [own.id] : []);
    if (own) chart.take([own.id], { flash: true });
    chart.setVisited(all.slice(0, step + 1).map((r) => chart.resolve(r.to)).filter((x) => x !== null));
    highlight(row.to);
    stepLabel.textContent = `${step + 1} / ${all.length} · ${row.from ?? '∅'} → ${row.to} · ${eventName(row.event)} · ${clock(row.at)}`;
    steps.select(step);
  };

  /** Switches between following the job and replaying its stored history. */
  const setMode = () => {
    const hasEnded = ended.has(job.status);
    if (hasEnded && !replaying) {
      replaying = true;
      provisional = [];
      scrubber.hidden = false;
      range.max = String(Math.max(0, history.length - 1));
      steps.render(rows(), { live: false });
      showStep(history.length - 1);
    } else if (!hasEnded && replaying) {
      replaying = false;
      scrubber.hidden = true;
      steps.select(-1);
      chart.setStep([]);
      chart.clearTaken();
      chart.take(edgesUpTo(rows().length - 1));
      highlight(statePath(job, ended));
      renderLive();
    } else if (replaying) {
      range.max = String(Math.max(0, history.length - 1));
      steps.render(rows(), { live: false });
      showStep(Math.min(step, history.length - 1));
    }
  };

  let blobFrame = 0;
  const renderBlobs = () => {
    if (blobFrame) return;
    blobFrame = requestAnimationFrame(() => {
      blobFrame = 0;
      const now = Date.now();
      for (const [digest, blob] of blobs) if (blob.state === 'done' && now - blob.at > 15_000) blobs.delete(digest);
      const items = [...blobs.values()].sort((a, b) => Number(a.state === 'done') - Number(b.state === 'done'));
      blobList.replaceChildren(
        ...(items.length
          ? items.map((blob) => {
              const pct = blob.size ? Math.min(100, (blob.bytes / blob.size) * 100) : 0;
              return h(
                'li',
                { class: `blob blob-${blob.state}`, 'data-digest': blob.digest },
                h('div', { class: 'blob-line' }, h('span', { class: 'mono digest', title: blob.digest }, blob.digest.replace(/^sha256:/, '').slice(0, 16)), h('span', { class: 'muted' }, blob.state === 'done' ? blob.how ?? 'done' : `${bytes(blob.bytes)} / ${bytes(blob.size)}`)),
                h('div', { class: 'meter', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(blob.state === 'done' ? 100 : pct) }, h('span', { style: `width:${blob.state === 'done' ? 100 : pct.toFixed(1)}%` })),
              );
            })
          : [h('li', { class: 'muted empty' }, active.has(job.status) ? 'No transfer under way.' : 'No transfers: the job has ended.')]),
      );
    });
  };

  const renderLogs = () => {
    logList.replaceChildren(
      ...logs.map((entry) =>
        h('li', { class: `log level-${entry.level}`, title: entry.message }, h('span', { class: 'muted' }, clock(entry.at)), ' ', h('span', { class: 'level' }, entry.level), ' ', shortDigests(entry.message)),
      ),
    );
    logList.scrollTop = logList.scrollHeight;
  };

  /** Lines shown, by time and message: live lines come without a sequence number. */
  const seen = new Set();
  const logKey = (/** @type {any} */ e) => `${e.at}|${e.message}`;
  /** @param {any[]} entries stored entries (with `seq`) or live ones (maybe without) */
  const addLogs = (entries) => {
    const fresh = entries.filter((e) => !seen.has(logKey(e)) && (e.seq === undefined || e.seq > lastLogSeq));
    for (const e of entries) if (typeof e.seq === 'number') lastLogSeq = Math.max(lastLogSeq, e.seq);
    if (!fresh.length) return;
    for (const e of fresh) seen.add(logKey(e));
    logs = [...logs, ...fresh].sort((a, b) => Date.parse(a.at) - Date.parse(b.at)).slice(-LOG_TAIL);
    renderLogs();
  };

  const loadLogs = async () => {
    for (;;) {
      const page = await get(`/jobs/${encodeURIComponent(id)}/logs?after=${lastLogSeq}&limit=500`);
      addLogs(page);
      if (page.length < 500 || disposed) return;
    }
  };

  let refreshing = 0;
  /** Reloads the stored history (after each persisted change). */
  const refreshHistory = () => {
    clearTimeout(refreshing);
    refreshing = window.setTimeout(async () => {
      try {
        const fresh = await get(`/jobs/${encodeURIComponent(id)}`);
        if (disposed) return;
        // A job on another node sends no log lines live: read what it has stored.
        void loadLogs().catch(() => {});
        history = fresh.history ?? [];
        const last = history[history.length - 1];
        // Keep live transitions the store has not written yet.
        provisional = provisional.filter((p) => last && Date.parse(p.at) > Date.parse(last.at) && p.to !== last.to);
        job = { ...job, ...fresh };
        renderHeader();
        if (replaying || !active.has(job.status)) setMode();
        else renderLive();
      } catch {
        // the next change retries
      }
    }, 60);
  };

  // ---- actions ----------------------------------------------------------------------------
  /** @param {'stop' | 'retry'} action */
  async function act(action) {
    stopButton.disabled = true;
    retryButton.disabled = true;
    message.textContent = action === 'stop' ? 'stopping…' : 'retrying…';
    try {
      const updated = await post(`/jobs/${encodeURIComponent(id)}/${action}`);
      message.textContent = '';
      job = { ...job, ...updated };
      if (action === 'retry') {
        blobs.clear();
        renderBlobs();
      }
      renderHeader();
      refreshHistory();
    } catch (error) {
      message.textContent = error instanceof ApiError && error.status === 409 ? `cannot ${action}: ${error.message}` : `${action} failed: ${/** @type {Error} */ (error).message}`;
      renderHeader();
    }
  }

  // ---- live updates -------------------------------------------------------------------------
  /** @param {string} type @param {any} data */
  const onEvent = (type, data) => {
    switch (type) {
      case 'snapshot': {
        job = { ...job, ...data.job };
        blobs.clear();
        for (const blob of data.blobs ?? []) blobs.set(blob.digest, { ...blob, state: blob.bytes >= blob.size && blob.size > 0 ? 'done' : 'progress', at: Date.now() });
        for (const blob of data.blobs ?? []) rate.blob({ ...blob, state: 'progress' });
        rate.rebase();
        if (Array.isArray(data.history)) history = data.history;
        provisional = [];
        renderHeader();
        renderBlobs();
        batchChart?.setCounts(active.has(job.status) ? data.batches ?? {} : {});
        if (active.has(job.status)) {
          if (replaying) setMode();
          highlight(data.stateId ?? statePath(job, ended));
          renderLive();
        }
        refreshHistory();
        void loadLogs().catch(() => {});
        break;
      }
      case 'transition': {
        if (replaying) break;
        chart.take(data.edgeIds ?? [], { flash: true });
        highlight(data.to);
        const strip = (/** @type {string | null} */ sid) => (sid && sid.startsWith(`${graph.machine}.`) ? sid.slice(graph.machine.length + 1) : sid);
        provisional.push({ from: strip(data.from), to: /** @type {string} */ (strip(data.to)), event: data.event, at: data.at, provisional: true });
        renderLive();
        break;
      }
      case 'job': {
        const wasActive = active.has(job.status);
        job = { ...job, ...data };
        renderHeader();
        if (active.has(job.status)) {
          if (!wasActive) {
            // a retry: a new attempt starts from pending
            chart.clearTaken();
            blobs.clear();
            renderBlobs();
          }
          if (replaying) setMode();
          // The stored state wins unless the chart already shows it or one of its substates.
          const resolved = chart.resolve(statePath(job, ended));
          const current = chart.current;
          if (resolved && !(current && (current === resolved || current.startsWith(`${resolved}.`)))) highlight(resolved);
        } else {
          highlight(job.status);
          batchChart?.setCounts({});
        }
        refreshHistory();
        break;
      }
      case 'blob': {
        const previous = blobs.get(data.digest);
        blobs.set(data.digest, { ...previous, ...data, at: Date.now() });
        rate.blob(data);
        renderBlobs();
        break;
      }
      case 'log':
        addLogs([data.entry ?? data]);
        break;
      case 'batches':
        batchChart?.setCounts(data.states ?? {});
        break;
      default:
        break;
    }
  };

  // First paint from the stored job: the right state at once, before the stream connects.
  renderHeader();
  chart.take(edgesUpTo(history.length - 1));
  chart.setVisited(history.map((r) => chart.resolve(r.to)).filter((x) => x !== null));
  highlight(statePath(job, ended));
  renderBlobs();
  if (active.has(job.status)) renderLive();
  else setMode();
  void loadLogs().catch(() => {});
  void origin(job).then(({ parts, execution }) => {
    names.replaceChildren(...parts);
    if (execution) executionCrumb.textContent = execution;
  }, () => {});

  const live = subscribe(`/jobs/${encodeURIComponent(id)}/live`, {
    onEvent,
    onState: (state) => {
      connection.className = `connection connection-${state}`;
      connection.textContent = state === 'open' ? 'live' : state === 'connecting' ? 'connecting…' : 'offline';
    },
  });

  return () => {
    disposed = true;
    live.close();
    steps.dispose();
    rate.dispose();
    clearTimeout(refreshing);
    cancelAnimationFrame(blobFrame);
  };
}

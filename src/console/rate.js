// A job's transfer rate over time. The service keeps no history of its bytes, so the curve is
// drawn from the blob progress the live feed sends while the page is open.

import { bytes, duration, h } from './format.js';
import { lineChart } from './plot.js';

const SAMPLE_MS = 1_000;
const KEPT = 600;

const perSecond = (/** @type {number} */ n) => `${bytes(n)}/s`;

export function transferRate() {
  /** Bytes moved per blob in this page's view; a mounted or existing blob moved none. @type {Map<string, number>} */
  const moved = new Map();
  /** @type {Array<{ at: number, value: number }>} */
  const points = [];
  /** @type {{ at: number, total: number } | undefined} */
  let last;
  let timer = 0;
  const plot = h('div', { class: 'rate-plot' });
  const note = h('p', { class: 'muted rate-note' });
  const element = h('section', { class: 'panel rate' }, h('h2', null, 'Bytes per second'), plot, note);
  const total = () => [...moved.values()].reduce((sum, n) => sum + n, 0);

  function sample() {
    const now = Date.now();
    const sum = total();
    if (last && now > last.at) points.push({ at: now, value: Math.max(0, (sum - last.total) / ((now - last.at) / 1000)) });
    last = { at: now, total: sum };
    points.splice(0, Math.max(0, points.length - KEPT));
    plot.replaceChildren(lineChart(points, perSecond, 'rate-chart', 'bytes per second over time'));
  }

  return {
    element,
    /** @param {{ digest: string, bytes: number, state: string, how?: string }} blob */
    blob: (blob) => moved.set(blob.digest, blob.state === 'done' && blob.how !== 'copied' ? 0 : blob.bytes),
    /** The blobs already under way when the feed (re)connects: their bytes so far are no rate. */
    rebase: () => (last = undefined),
    /** Samples while the job runs; an ended job without samples says its average. @param {any} job @param {boolean} running */
    follow(job, running) {
      if (running && !timer) {
        sample();
        timer = window.setInterval(sample, SAMPLE_MS);
      } else if (!running && timer) {
        clearInterval(timer);
        timer = 0;
        sample();
      }
      const took = job.startedAt && job.finishedAt ? Date.parse(job.finishedAt) - Date.parse(job.startedAt) : 0;
      const average = took > 0 ? `Average ${perSecond((job.progress?.bytesCopied ?? 0) / (took / 1000))} over ${duration(took)}. ` : '';
      note.textContent = `${average}Sampled each second from the live feed while this page is open${points.length ? '' : ': nothing transferred since'}.`;
    },
    dispose: () => clearInterval(timer),
  };
}

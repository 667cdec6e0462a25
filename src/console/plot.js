// Plain SVG charts over time: a line of values, and counts stacked.

import { duration } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 170;
const LEFT = 70;
const RIGHT = 10;
const TOP = 10;
const BOTTOM = 22;

/** @param {string} tag @param {Record<string, string | number>} attributes @param {...(Node | string)} children */
function svg(tag, attributes, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  element.append(...children);
  return element;
}

/** @param {number} t0 @param {number} t1 @param {number} max */
function scales(t0, t1, max) {
  return {
    x: (/** @type {number} */ t) => LEFT + ((t - t0) / (t1 - t0 || 1)) * (WIDTH - LEFT - RIGHT),
    y: (/** @type {number} */ v) => TOP + (1 - v / (max || 1)) * (HEIGHT - TOP - BOTTOM),
  };
}

/** The axes, the top value and the time elapsed. @param {number} t0 @param {number} t1 @param {string} top */
function axes(t0, t1, top) {
  const bottom = HEIGHT - BOTTOM;
  return svg(
    'g',
    {},
    svg('line', { class: 'axis', x1: LEFT, y1: TOP, x2: LEFT, y2: bottom }),
    svg('line', { class: 'axis', x1: LEFT, y1: bottom, x2: WIDTH - RIGHT, y2: bottom }),
    svg('text', { x: LEFT - 4, y: TOP + 9, 'text-anchor': 'end' }, top),
    svg('text', { x: LEFT - 4, y: bottom, 'text-anchor': 'end' }, '0'),
    svg('text', { x: LEFT, y: HEIGHT - 6 }, '0 s'),
    svg('text', { x: WIDTH - RIGHT, y: HEIGHT - 6, 'text-anchor': 'end' }, duration(t1 - t0)),
  );
}

/** @param {string} className @param {number} count @param {string} label */
const frame = (className, count, label) => svg('svg', { class: `plot ${className}`, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': label, 'data-points': count });

/**
 * Values over time, each a point with its value in a tooltip.
 * @param {Array<{ at: number, value: number }>} points @param {(value: number) => string} format @param {string} className @param {string} label
 */
export function lineChart(points, format, className, label) {
  const chart = frame(className, points.length, label);
  if (!points.length) return chart;
  const t0 = points[0]?.at ?? 0;
  const t1 = points[points.length - 1]?.at ?? t0;
  const max = Math.max(...points.map((p) => p.value));
  const { x, y } = scales(t0, t1, max);
  const line = points.map((p) => `${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
  chart.append(
    axes(t0, t1, format(max)),
    svg('polygon', { class: 'area', points: `${x(t0)},${y(0)} ${line} ${x(t1)},${y(0)}` }),
    svg('polyline', { class: 'series', points: line }),
    ...points.map((p) => svg('circle', { class: 'point', cx: x(p.at).toFixed(1), cy: y(p.value).toFixed(1), r: 2.2, 'data-value': p.value }, svg('title', {}, `${duration(p.at - t0)}: ${format(p.value)}`))),
  );
  return chart;
}

/**
 * Counts stacked over time, held from each time to the next: `layers[i].counts[j]` at `times[j]`.
 * @param {number[]} times @param {Array<{ name: string, counts: number[] }>} layers @param {string} className @param {string} label
 */
export function stackedChart(times, layers, className, label) {
  const chart = frame(className, times.length, label);
  if (!times.length) return chart;
  const t0 = times[0] ?? 0;
  const t1 = times[times.length - 1] ?? t0;
  const totals = times.map((_, j) => layers.reduce((sum, layer) => sum + (layer.counts[j] ?? 0), 0));
  const { x, y } = scales(t0, t1, Math.max(...totals));
  const below = times.map(() => 0);
  chart.append(axes(t0, t1, String(Math.max(...totals))));
  for (const layer of layers) {
    if (!layer.counts.some((n) => n > 0)) continue;
    const above = below.map((base, j) => base + (layer.counts[j] ?? 0));
    // A step: each count holds until the next time.
    const edge = (/** @type {number[]} */ level) => times.flatMap((t, j) => [[x(t), y(level[j] ?? 0)], [x(times[j + 1] ?? t), y(level[j] ?? 0)]]);
    const outline = [...edge(above), ...edge(below).reverse()].map(([px, py]) => `${px?.toFixed(1)},${py?.toFixed(1)}`).join(' ');
    chart.append(svg('polygon', { class: `layer layer-${layer.name}`, 'data-status': layer.name, 'data-max': Math.max(...layer.counts), points: outline }, svg('title', {}, layer.name)));
    above.forEach((value, j) => (below[j] = value));
  }
  return chart;
}

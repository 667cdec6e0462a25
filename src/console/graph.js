// Draws a machine's statechart as SVG from the layout the service computes with ELK
// (`GET /api/v1/machines/:name/graph`): every coordinate comes from the layout, nothing is
// placed by hand, so edge labels sit in the boxes ELK reserved for them and never overlap.

const SVG = 'http://www.w3.org/2000/svg';

/**
 * @typedef {{ id: string, label: string, kind: 'machine'|'compound'|'atomic'|'final'|'history', parent: string|null, invokes: string|null, x: number, y: number, width: number, height: number }} GraphNode
 * @typedef {{ x: number, y: number, width: number, height: number }} Box
 * @typedef {{ id: string, source: string, target: string, label: string, eventType: string, guard: string|null, points: Array<{x: number, y: number}>, labelBox: Box|null }} GraphEdge
 * @typedef {{ machine: string, width: number, height: number, nodes: GraphNode[], edges: GraphEdge[] }} MachineGraph
 */

/**
 * @param {string} tag
 * @param {Record<string, string | number>} [attributes]
 * @param {...(SVGElement | string)} children
 */
function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  for (const child of children) element.append(child);
  return element;
}

const MARKERS = ['edge', 'taken', 'flash', 'step'];

function defs() {
  return s(
    'defs',
    {},
    ...MARKERS.map((name) =>
      s('marker', { id: `arrow-${name}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: `arrow arrow-${name}` })),
    ),
  );
}

/** Which node a stored path names: `running.pullManifest` → `replication.running.pullManifest`; `retrying.check` → `replication.retrying`. */
export function resolveState(/** @type {MachineGraph} */ graph, /** @type {string | null | undefined} */ path) {
  if (!path) return null;
  const ids = new Set(graph.nodes.map((n) => n.id));
  let id = path === graph.machine || path.startsWith(`${graph.machine}.`) ? path : `${graph.machine}.${path}`;
  while (!ids.has(id) && id.includes('.')) id = id.slice(0, id.lastIndexOf('.'));
  return ids.has(id) ? id : null;
}

/** True when `ancestor` is `id` or contains it. */
const within = (/** @type {string} */ id, /** @type {string} */ ancestor) => id === ancestor || id.startsWith(`${ancestor}.`);

/**
 * The edge a stored transition took: same event, leaving the state or one of its ancestors
 * (STOP is defined on the root), arriving at the state, an ancestor (START enters `running`)
 * or a history node of an ancestor (a retry resumes the phase).
 * @param {MachineGraph} graph
 * @param {string | null} from node id
 * @param {string | null} to node id
 * @param {string} event
 * @returns {GraphEdge | undefined}
 */
export function edgeForStep(graph, from, to, event) {
  if (!from || !to) return undefined;
  const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
  const arrives = (/** @type {GraphEdge} */ edge) => {
    const target = nodes.get(edge.target);
    if (target?.kind === 'history') return target.parent !== null && within(to, target.parent);
    return within(to, edge.target);
  };
  const arriving = graph.edges.filter((edge) => edge.eventType === event && arrives(edge));
  const leaving = arriving.filter((edge) => within(from, edge.source));
  // The store splits START in two (`pending → running` claimed, `running → running.initialize`
  // START): an event taken from elsewhere still names its only edge.
  const candidates = leaving.length ? leaving : arriving.length === 1 ? arriving : [];
  return candidates.find((edge) => edge.source === from && edge.target === to) ?? candidates.find((edge) => edge.target === to) ?? candidates[0];
}

/**
 * @param {GraphNode} node
 * @returns {SVGElement}
 */
function drawNode(node) {
  const { x, y, width, height } = node;
  const group = s('g', { class: `state kind-${node.kind}`, 'data-state': node.id });
  group.append(s('title', {}, node.invokes ? `${node.id}\ninvokes ${node.invokes}` : node.id));
  if (node.kind === 'history') {
    group.append(s('circle', { class: 'shape', cx: x + width / 2, cy: y + height / 2, r: Math.min(width, height) / 2 }));
    group.append(s('text', { class: 'name', x: x + width / 2, y: y + height / 2 + 4, 'text-anchor': 'middle' }, 'H'));
    return group;
  }
  if (node.kind === 'machine' || node.kind === 'compound') {
    group.append(s('rect', { class: 'shape', x, y, width, height, rx: 12 }));
    group.append(s('text', { class: 'container-label', x: x + 14, y: y + 20 }, node.label));
    return group;
  }
  group.append(s('rect', { class: 'shape', x, y, width, height, rx: 9 }));
  if (node.kind === 'final') group.append(s('rect', { class: 'inner', x: x + 4, y: y + 4, width: width - 8, height: height - 8, rx: 6 }));
  const cx = x + width / 2;
  if (node.invokes) {
    group.append(s('text', { class: 'name', x: cx, y: y + height / 2 - 3, 'text-anchor': 'middle' }, node.label));
    group.append(s('text', { class: 'invokes', x: cx, y: y + height / 2 + 13, 'text-anchor': 'middle' }, `(${node.invokes})`));
  } else {
    group.append(s('text', { class: 'name', x: cx, y: y + height / 2 + 4, 'text-anchor': 'middle' }, node.label));
  }
  return group;
}

/** @param {GraphEdge} edge */
function drawEdge(edge) {
  const group = s('g', { class: 'transition', 'data-edge': edge.id });
  group.append(s('title', {}, `${edge.label}${edge.guard ? '' : ''}\n${edge.source} → ${edge.target}`));
  const points = edge.points.map((p) => `${p.x},${p.y}`).join(' ');
  group.append(s('polyline', { class: 'hit', points }));
  group.append(s('polyline', { class: 'line', points }));
  return group;
}

/** @param {GraphEdge} edge */
function drawLabel(edge) {
  const box = /** @type {Box} */ (edge.labelBox);
  return s(
    'g',
    { class: 'edge-label', 'data-edge': edge.id },
    s('rect', { x: box.x - 2, y: box.y, width: box.width + 4, height: box.height, rx: 3 }),
    s('text', { x: box.x + box.width / 2, y: box.y + box.height / 2 + 4, 'text-anchor': 'middle' }, edge.label),
  );
}

/**
 * The chart of one machine, with the current state and the transitions taken marked.
 * @param {MachineGraph} graph
 */
export function statechart(graph) {
  const depth = (/** @type {GraphNode} */ node) => {
    let d = 0;
    for (let p = node.parent; p; p = graph.nodes.find((n) => n.id === p)?.parent ?? null) d++;
    return d;
  };
  const containers = graph.nodes.filter((n) => n.kind === 'machine' || n.kind === 'compound').sort((a, b) => depth(a) - depth(b));
  const leaves = graph.nodes.filter((n) => n.kind !== 'machine' && n.kind !== 'compound');
  const edges = graph.edges.filter((e) => e.points.length >= 2);

  const svg = /** @type {SVGSVGElement} */ (
    s('svg', { class: 'statechart', viewBox: `0 0 ${graph.width} ${graph.height}`, preserveAspectRatio: 'xMidYMin meet', role: 'img', 'aria-label': `${graph.machine} statechart`, 'data-machine': graph.machine })
  );
  svg.append(defs());
  /** @type {Map<string, SVGElement>} */
  const nodeElements = new Map();
  /** @type {Map<string, SVGElement[]>} */
  const edgeElements = new Map();
  const layer = (/** @type {string} */ name) => svg.appendChild(s('g', { class: `layer-${name}` }));
  const containerLayer = layer('containers');
  const edgeLayer = layer('edges');
  const nodeLayer = layer('nodes');
  const labelLayer = layer('labels');
  for (const node of containers) nodeElements.set(node.id, containerLayer.appendChild(drawNode(node)));
  for (const edge of edges) edgeElements.set(edge.id, [edgeLayer.appendChild(drawEdge(edge))]);
  for (const node of leaves) nodeElements.set(node.id, nodeLayer.appendChild(drawNode(node)));
  for (const edge of edges) if (edge.labelBox) edgeElements.get(edge.id)?.push(labelLayer.appendChild(drawLabel(edge)));

  /** @type {string | null} */
  let current = null;
  const edgeClass = (/** @type {string} */ id, /** @type {string} */ name, /** @type {boolean} */ on) => {
    for (const element of edgeElements.get(id) ?? []) element.classList.toggle(name, on);
  };

  return {
    element: svg,
    graph,
    /** @param {string | null | undefined} path a node id or stored path */
    resolve: (path) => resolveState(graph, path),
    /**
     * Highlights the current state (and its ancestors as active); `tone` colours it by status.
     * @param {string | null} stateId
     * @param {string} [tone]
     */
    setCurrent(stateId, tone = 'running') {
      const id = resolveState(graph, stateId);
      for (const element of nodeElements.values()) element.classList.remove('current', 'active', ...[...element.classList].filter((c) => c.startsWith('tone-')));
      current = id;
      svg.dataset.current = id ?? '';
      if (!id) return;
      const element = nodeElements.get(id);
      element?.classList.add('current', `tone-${tone}`);
      for (let parent = graph.nodes.find((n) => n.id === id)?.parent; parent; parent = graph.nodes.find((n) => n.id === parent)?.parent ?? null) {
        nodeElements.get(parent)?.classList.add('active');
      }
    },
    get current() {
      return current;
    },
    /** Marks states as visited (a light tint). @param {Iterable<string>} ids */
    setVisited(ids) {
      const visited = new Set(ids);
      for (const [id, element] of nodeElements) element.classList.toggle('visited', visited.has(id));
    },
    /** @param {string} stateId */
    visit(stateId) {
      nodeElements.get(stateId)?.classList.add('visited');
    },
    /**
     * Marks edges as taken; `flash` makes them pulse first (a transition as it happens).
     * @param {string[]} ids
     * @param {{ flash?: boolean, step?: boolean }} [options]
     */
    take(ids, { flash = false } = {}) {
      for (const id of ids) {
        edgeClass(id, 'taken', true);
        if (flash) {
          for (const element of edgeElements.get(id) ?? []) {
            element.classList.remove('flash');
            // restart the animation
            void element.getBoundingClientRect();
            element.classList.add('flash');
          }
        }
      }
    },
    /** The edge of the step a replay points at. @param {string[]} ids */
    setStep(ids) {
      for (const id of edgeElements.keys()) edgeClass(id, 'step', ids.includes(id));
    },
    clearTaken() {
      for (const id of edgeElements.keys()) {
        edgeClass(id, 'taken', false);
        edgeClass(id, 'flash', false);
        edgeClass(id, 'step', false);
      }
    },
    /** @param {string | null} from @param {string | null} to @param {string} event */
    edgeFor: (from, to, event) => edgeForStep(graph, from, to, event),
    /**
     * Many actors of one machine at once (a job's batches): each state lit with how many are in it.
     * @param {Record<string, number>} counts by state id
     */
    setCounts(counts) {
      svg.dataset.counts = JSON.stringify(counts);
      for (const node of leaves) {
        const element = nodeElements.get(node.id);
        if (!element) continue;
        const n = counts[node.id] ?? 0;
        element.classList.toggle('current', n > 0);
        element.classList.toggle('tone-running', n > 0);
        element.querySelector('.count')?.remove();
        if (n > 0) element.append(s('text', { class: 'count', x: node.x + node.width - 8, y: node.y + 14, 'text-anchor': 'end' }, String(n)));
      }
    },
  };
}

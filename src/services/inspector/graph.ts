import { createRequire } from 'node:module';
import type { ELK as Elk, ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import type { AnyStateMachine, AnyStateNode } from 'xstate';

export type NodeKind = 'machine' | 'compound' | 'atomic' | 'final' | 'history';

export interface GraphNode {
  /** The state's id, as in snapshots: `replication.running.pullManifest`. */
  id: string;
  label: string;
  kind: NodeKind;
  parent: string | null;
  /** The actor the state invokes, if any. */
  invokes: string | null;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  /** `done`, `error [canRetry]`, `STOP`, ... */
  label: string;
  /** The event that takes it, as the inspection stream reports it. */
  eventType: string;
  guard: string | null;
  points: Array<{ x: number; y: number }>;
  labelBox: { x: number; y: number; width: number; height: number } | null;
}

/** A machine's statechart laid out for drawing: absolute coordinates, in flow order. */
export interface MachineGraph {
  machine: string;
  width: number;
  height: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

// elkjs is CommonJS whose typings declare an ES default export: require it as what it is.
const ELK = createRequire(import.meta.url)('elkjs/lib/elk.bundled.js') as new () => Elk;

const CHAR_WIDTH = 7;
const LINE_HEIGHT = 16;

/**
 * Lays out the machine's own definition with ELK: every state and transition of the machine
 * the service runs, nothing drawn by hand. A root-level event (STOP) is drawn from each
 * top-level state it leaves; a history target is drawn as the history node.
 */
export async function machineGraph(machine: AnyStateMachine): Promise<MachineGraph> {
  const nodes = new Map<string, GraphNode>();
  const edges: Array<Omit<GraphEdge, 'points' | 'labelBox'>> = [];
  const collect = (node: AnyStateNode, parent: string | null) => {
    const kind = nodeKind(node);
    const invokes = node.invoke.map((i) => i.src).find((src): src is string => typeof src === 'string') ?? null;
    const label = kind === 'history' ? 'H' : node.key;
    nodes.set(node.id, { id: node.id, label, kind, parent, invokes, x: 0, y: 0, width: 0, height: 0 });
    node.transitions.forEach((transitions, eventType) => {
      transitions.forEach((transition, index) => {
        const guard = guardName(transition.guard);
        const sources = node === machine.root ? Object.values(node.states).filter((s) => s.type !== 'final').map((s) => s.id) : [node.id];
        for (const target of transition.target ?? []) {
          for (const source of sources) {
            edges.push({ id: `${source}|${eventType}|${index}|${target.id}`, source, target: target.id, eventType, guard, label: edgeLabel(eventType, guard) });
          }
        }
      });
    });
    for (const child of Object.values(node.states)) collect(child, node.id);
  };
  collect(machine.root, null);

  const elkNode = (node: GraphNode): ElkNode => {
    const children = [...nodes.values()].filter((n) => n.parent === node.id);
    const text = [node.label, node.invokes ? `(${node.invokes})` : ''].filter(Boolean);
    const size = node.kind === 'history' ? { width: 24, height: 24 } : { width: Math.max(...text.map((t) => t.length)) * CHAR_WIDTH + 28, height: text.length * LINE_HEIGHT + 20 };
    return children.length === 0
      ? { id: node.id, ...size }
      : {
          id: node.id,
          layoutOptions: { 'elk.padding': '[top=32,left=16,bottom=16,right=16]' },
          labels: [{ text: node.label, width: node.label.length * CHAR_WIDTH, height: LINE_HEIGHT }],
          children: children.map(elkNode),
        };
  };
  const root = nodes.get(machine.root.id)!;
  const input: ElkNode = {
    id: 'graph',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '60',
      'elk.spacing.nodeNode': '30',
      'elk.spacing.edgeLabel': '4',
      'elk.edgeLabels.inline': 'false',
      'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
      // Shapes relative to their parent, edges to the root: `place` adds the offsets up.
      'elk.json.shapeCoords': 'PARENT',
      'elk.json.edgeCoords': 'ROOT',
    },
    children: [elkNode(root)],
    edges: edges.map(
      (edge): ElkExtendedEdge => ({
        id: edge.id,
        sources: [edge.source],
        targets: [edge.target],
        labels: [{ text: edge.label, width: edge.label.length * CHAR_WIDTH, height: LINE_HEIGHT }],
      }),
    ),
  };
  const laidOut: ElkNode = await new ELK().layout(input);

  const place = (node: ElkNode, dx: number, dy: number) => {
    const x = dx + (node.x ?? 0);
    const y = dy + (node.y ?? 0);
    const graphNode = nodes.get(node.id);
    if (graphNode) Object.assign(graphNode, { x, y, width: node.width ?? 0, height: node.height ?? 0 });
    for (const child of node.children ?? []) place(child, x, y);
  };
  place(laidOut, 0, 0);
  const placedEdges = new Map((laidOut.edges ?? []).map((edge) => [edge.id, edge]));
  return {
    machine: machine.id,
    width: laidOut.width ?? 0,
    height: laidOut.height ?? 0,
    nodes: [...nodes.values()],
    edges: edges.map((edge) => {
      const placed = placedEdges.get(edge.id);
      const section = placed?.sections?.[0];
      const label = placed?.labels?.[0];
      return {
        ...edge,
        points: section ? [section.startPoint, ...(section.bendPoints ?? []), section.endPoint] : [],
        labelBox: label ? { x: label.x ?? 0, y: label.y ?? 0, width: label.width ?? 0, height: label.height ?? 0 } : null,
      };
    }),
  };
}

/** The graph's edge for a transition the inspection stream reports. */
export function findEdge(graph: MachineGraph, transition: { source: string; eventType: string; targets: string[]; guard: string | null }): GraphEdge | undefined {
  return graph.edges.find(
    (edge) =>
      edge.eventType === transition.eventType &&
      edge.guard === transition.guard &&
      transition.targets.includes(edge.target) &&
      (edge.source === transition.source || transition.source === graph.machine),
  );
}

function nodeKind(node: AnyStateNode): NodeKind {
  if (!node.parent) return 'machine';
  if (node.type === 'history') return 'history';
  if (node.type === 'final') return 'final';
  return Object.keys(node.states).length > 0 ? 'compound' : 'atomic';
}

export function guardName(guard: unknown): string | null {
  if (typeof guard === 'string') return guard;
  const type = (guard as { type?: unknown } | undefined)?.type;
  return typeof type === 'string' ? type : null;
}

function edgeLabel(eventType: string, guard: string | null): string {
  const name = eventType.replace(/^xstate\.(done|error)\.actor\..*$/, '$1');
  return guard ? `${name} [${guard}]` : name;
}

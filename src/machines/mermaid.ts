import type { AnyStateMachine, AnyStateNode } from 'xstate';

interface Edge {
  from: AnyStateNode;
  to: AnyStateNode;
  label: string;
}

/**
 * A Mermaid `stateDiagram-v2` drawn from the machine definition itself: states, the actors
 * they invoke (or the entry actions that spawn them), every transition with its event and
 * guard, a transition without a target as a loop. A root-level event (STOP) is drawn from each
 * top-level state it can leave.
 */
export function toMermaid(machine: AnyStateMachine): string {
  const root = machine.root;
  const edges: Edge[] = [];
  const walk = (node: AnyStateNode) => {
    for (const [event, transitions] of node.transitions) {
      for (const transition of transitions) {
        for (const target of transition.target ?? [node]) {
          const label = edgeLabel(event, transition.guard);
          const sources = node === root ? Object.values(root.states).filter((s) => s.type !== 'final') : [node];
          for (const from of sources) edges.push({ from, to: target, label });
        }
      }
    }
    for (const child of Object.values(node.states)) walk(child);
  };
  walk(root);

  const lines = ['stateDiagram-v2'];
  const declare = (node: AnyStateNode, indent: string) => {
    const children = Object.values(node.states).filter((child) => child.type !== 'history');
    if (node !== root && children.length === 0) {
      const invoked = node.invoke.map((i) => i.src).filter((src): src is string => typeof src === 'string');
      const entered = node.entry.flatMap((action) => (typeof action === 'object' && action !== null && 'type' in action ? [`entry ${String(action.type)}`] : typeof action === 'string' ? [`entry ${action}`] : []));
      const notes = [...invoked, ...entered];
      if (notes.length > 0) lines.push(`${indent}${node.key} : ${node.key}\\n(${notes.join(', ')})`);
      if (node.type === 'final') lines.push(`${indent}${node.key} --> [*]`);
      return;
    }
    const inner = node === root ? indent : `${indent}  `;
    if (node !== root) lines.push(`${indent}state ${node.key} {`);
    const initial = node.initial?.target[0];
    if (initial) lines.push(`${inner}[*] --> ${initial.key}`);
    for (const child of children) declare(child, inner);
    for (const edge of edges) {
      if (edge.from.parent === node && resolve(edge.to).parent === node) lines.push(`${inner}${edgeLine(edge)}`);
    }
    if (node !== root) lines.push(`${indent}}`);
  };
  declare(root, '  ');
  for (const edge of edges) {
    const to = resolve(edge.to);
    if (edge.from.parent !== to.parent) lines.push(`  ${edgeLine(edge)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A history target is drawn as its parent state, with "resume" in the label. */
function resolve(node: AnyStateNode): AnyStateNode {
  return node.type === 'history' && node.parent ? node.parent : node;
}

function edgeLine(edge: Edge): string {
  const to = resolve(edge.to);
  const label = edge.to.type === 'history' ? `${edge.label} (resume phase)` : edge.label;
  return `${edge.from.key} --> ${to.key} : ${label}`;
}

function edgeLabel(event: string, guard: unknown): string {
  // `xstate.done.actor.*`: any actor the state spawned reached its end.
  const name = event.replace(/^xstate\.(done|error)\.actor\.\*$/, 'child $1').replace(/^xstate\.(done|error)\.actor\..*$/, '$1');
  const guardName = typeof guard === 'string' ? guard : (guard as { type?: string } | undefined)?.type;
  return guardName ? `${name} [${guardName}]` : name;
}

import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';
import { toDirectedGraph } from 'xstate/graph';
import type { DirectedGraphNode } from 'xstate/graph';

/**
 * The states and transitions of a production machine, read from its definition (never copied
 * by hand): every atomic state, and every transition as it applies to an atomic state, with
 * root-level events (STOP) repeated under each state they leave, compound targets resolved
 * to their initial state and history targets to each phase that history can resume.
 */
export interface ModelTransition {
  key: string;
  source: string;
  event: string;
  guard: string | null;
  target: string;
}

export interface MachineModel {
  machine: AnyStateMachine;
  states: string[];
  finals: string[];
  transitions: ModelTransition[];
}

/** `running.initialize`, `retrying`, ...: a state node's path, as the store names a step. */
export const statePath = (node: AnyStateNode): string => node.path.join('.');

export function guardName(transition: AnyTransitionDefinition): string | null {
  const guard = transition.guard as unknown;
  if (guard === undefined || guard === null) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && 'type' in guard) return String((guard as { type: unknown }).type);
  return 'inline';
}

export function transitionKey(source: string, event: string, guard: string | null, target: string): string {
  return `${source} --${event}${guard ? ` [${guard}]` : ''}--> ${target}`;
}

/** The atomic state a snapshot value is in: `{ running: 'check' }` -> `running.check`. */
export function valuePath(value: unknown): string {
  if (typeof value === 'string') return value;
  const [key, inner] = Object.entries(value as Record<string, unknown>)[0]!;
  return `${key}.${valuePath(inner)}`;
}

function descendants(node: AnyStateNode): AnyStateNode[] {
  return [node, ...Object.values(node.states).flatMap(descendants)];
}

function isAtomic(node: AnyStateNode): boolean {
  return node.type === 'atomic' || node.type === 'final';
}

/** Where entering `target` from `source` lands: initial states followed, history expanded. */
function resolveTarget(target: AnyStateNode, source: AnyStateNode): AnyStateNode[] {
  if (target.type === 'history') {
    // A history state resumes whichever sibling the source was entered from.
    return Object.values(target.parent!.states).filter(
      (sibling) => isAtomic(sibling) && [...sibling.transitions.values()].flat().some((t) => t.target?.some((t2) => source === t2 || descendants(t2).includes(source))),
    );
  }
  if (isAtomic(target)) return [target];
  const initial = target.initial?.target ?? [];
  return initial.flatMap((node) => resolveTarget(node, source));
}

function graphEdges(node: DirectedGraphNode): DirectedGraphNode['edges'] {
  return [...node.edges, ...node.children.flatMap(graphEdges)];
}

export function machineModel(machine: AnyStateMachine): MachineModel {
  const nodes = descendants(machine.root).filter(isAtomic);
  const states = nodes.map(statePath);
  const finals = nodes.filter((node) => node.type === 'final').map(statePath);
  const edges = graphEdges(toDirectedGraph(machine));
  const transitions = new Map<string, ModelTransition>();
  for (const edge of edges) {
    // An edge of a compound state (or the root) leaves every atomic state inside it that is not final.
    const sources = descendants(edge.source).filter((node) => node.type === 'atomic');
    for (const source of sources) {
      for (const target of resolveTarget(edge.target, source)) {
        const t = { source: statePath(source), event: edge.transition.eventType, guard: guardName(edge.transition), target: statePath(target) };
        const key = transitionKey(t.source, t.event, t.guard, t.target);
        transitions.set(key, { key, ...t });
      }
    }
  }
  return { machine, states, finals, transitions: [...transitions.values()] };
}

import { getNextSnapshot, type AnyMachineSnapshot, type AnyStateMachine, type EventObject } from 'xstate';
import { getAdjacencyMap, getShortestPaths } from 'xstate/graph';
import type { StatePath } from 'xstate/graph';
import { RegistryError } from '../../src/services/registry/errors.js';
import { guardName, transitionKey, valuePath, type MachineModel } from './machine-model.js';

/**
 * Paths generated from a production machine by xstate/graph: every transition of the model,
 * with each error taken as transient, permanent and (transient once retries are used up)
 * exhausted, reached by a shortest path from the initial state.
 */

/** How an event came about, which is what the test must make the real registries do. */
export type Outcome = 'start' | 'stop' | 'done' | 'transient' | 'permanent';

/** A machine event, with how the test makes it happen (and for done events, the branch its payload picks). */
export type ModelEvent = EventObject & { outcome: Outcome; guard: string | null; output?: unknown; error?: unknown };

export interface ModelStep {
  from: string;
  to: string;
  event: ModelEvent;
  /** The model transition the machine took (source + event + guard + target), and its guard. */
  transition: string;
  guard: string | null;
  /** What the step is meant to cover: the transition, and for errors how the error came about. */
  goal: string;
}

export interface ModelPath {
  name: string;
  /** Input variant the path was generated for (dry run or not). */
  variant: string;
  steps: ModelStep[];
}

export interface PathSpec {
  model: MachineModel;
  /** Named machine inputs to explore (e.g. a normal and a dry run), the first one first. */
  inputs: Record<string, unknown>;
  /**
   * What `xstate.done.actor.<actor>` carries so that the transition guarded by `guard` (null:
   * unguarded) is taken from `snapshot` (`*`: a child the state spawned).
   */
  output(actor: string, guard: string | null, snapshot: AnyMachineSnapshot): unknown;
}

const ACTOR_EVENT = /^xstate\.(done|error)\.actor\.(.+)$/;

export const transientError = () => new RegistryError('SERVER_ERROR', 'model: 503 Service Unavailable', { status: 503 });
export const permanentError = () => new RegistryError('DENIED', 'model: 403 DENIED', { status: 403 });

/** One event per way each enabled transition of the current state can be taken. */
export function eventsFor(spec: PathSpec, snapshot: AnyMachineSnapshot): ModelEvent[] {
  const state = valuePath(snapshot.value);
  const events: ModelEvent[] = [];
  const seen = new Set<string>();
  for (const t of spec.model.transitions.filter((candidate) => candidate.source === state)) {
    const actor = ACTOR_EVENT.exec(t.event);
    const id = `${t.event}/${actor?.[1] === 'error' ? '' : (t.guard ?? '')}`;
    if (seen.has(id)) continue;
    seen.add(id);
    if (!actor) {
      events.push({ type: t.event, outcome: t.event === 'STOP' ? 'stop' : 'start', guard: null });
    } else if (actor[1] === 'done') {
      events.push({ type: t.event, output: spec.output(actor[2]!, t.guard, snapshot), outcome: 'done', guard: t.guard });
    } else {
      events.push({ type: t.event, error: transientError(), outcome: 'transient', guard: null });
      events.push({ type: t.event, error: permanentError(), outcome: 'permanent', guard: null });
    }
  }
  return events;
}

/**
 * What makes two snapshots different for the paths: the state, the attempt count (retry
 * exhaustion), the phase a retry resumes, the tags not yet handed to a batch and the input
 * variant; never timestamps (retryAt).
 */
export function serializeState(snapshot: AnyMachineSnapshot): string {
  const state = valuePath(snapshot.value);
  const context = snapshot.context as { attempt: number; pending?: unknown[]; job: { dryRun?: boolean } };
  if (snapshot.status === 'done') return state;
  const resume = state === 'retrying'
    ? Object.values(snapshot.historyValue as Record<string, Array<{ path: string[] }>>).flat().map((node) => node.path.join('.')).join(',')
    : '';
  return `${state}|attempt=${context.attempt}|resume=${resume}|pending=${context.pending?.length ?? '-'}|dry=${context.job.dryRun === true}`;
}

const serializeEvent = (event: ModelEvent) => `${event.type}/${event.outcome}/${event.guard ?? ''}`;

function describeStep(machine: AnyStateMachine, model: MachineModel, from: AnyMachineSnapshot, event: ModelEvent, to: AnyMachineSnapshot): ModelStep {
  const taken = machine.getTransitionData(from, event)[0];
  if (!taken) throw new Error(`no transition for ${event.type} in ${valuePath(from.value)}`);
  const step = { from: valuePath(from.value), to: valuePath(to.value), event };
  const transition = transitionKey(step.from, taken.eventType, guardName(taken), step.to);
  if (!model.transitions.some((t) => t.key === transition)) throw new Error(`the machine took ${transition}, which the model does not list`);
  const how = event.outcome === 'transient' && step.to !== 'retrying' ? 'exhausted' : event.outcome;
  return { ...step, transition, guard: guardName(taken), goal: event.outcome === 'transient' || event.outcome === 'permanent' ? `${transition} (${how})` : transition };
}

function toSteps(machine: AnyStateMachine, model: MachineModel, path: StatePath<AnyMachineSnapshot, ModelEvent>): ModelStep[] {
  return path.steps.slice(1).map((step, i) => describeStep(machine, model, path.steps[i]!.state, step.event, step.state));
}

const signature = (steps: ModelStep[]) => steps.map((s) => `${s.from}:${serializeEvent(s.event)}`).join(' > ');

export function pathName(steps: ModelStep[]): string {
  return steps
    .map((s) => {
      const phase = s.from.replace(/^running\./, '');
      if (s.event.outcome === 'start' || s.event.outcome === 'stop') return `${s.event.type} in ${phase}`;
      const how = s.goal.match(/\((\w+)\)$/)?.[1] ?? s.guard ?? 'done';
      return `${phase}:${how}`;
    })
    .join(' > ');
}

/**
 * A shortest path to every goal of every input variant; paths that are a prefix of another
 * dropped; a path that ends before a final state ends with STOP (the test stops the job), or
 * in a machine without STOP (a batch) goes on to its end, each phase done.
 */
export function generatePaths(spec: PathSpec): ModelPath[] {
  const { machine } = spec.model;
  const chosen = new Map<string, { variant: string; steps: ModelStep[]; last: AnyMachineSnapshot }>();
  for (const [variant, input] of Object.entries(spec.inputs)) {
    const options = {
      input,
      events: (snapshot: AnyMachineSnapshot) => eventsFor(spec, snapshot),
      serializeState: (snapshot: AnyMachineSnapshot) => serializeState(snapshot),
      serializeEvent,
      stopWhen: (snapshot: AnyMachineSnapshot) => snapshot.status === 'done',
    };
    const shortest = new Map(getShortestPaths(machine, options).map((path) => [serializeState(path.state), path]));
    const adjacency = getAdjacencyMap(machine, options);
    for (const [key, node] of Object.entries(adjacency)) {
      const head = shortest.get(key);
      if (!head) throw new Error(`no shortest path to ${key}`);
      for (const { event, state } of Object.values(node.transitions) as Array<{ event: ModelEvent; state: AnyMachineSnapshot }>) {
        const step = describeStep(machine, spec.model, node.state, event, state);
        const steps = [...toSteps(machine, spec.model, head as StatePath<AnyMachineSnapshot, ModelEvent>), step];
        const known = chosen.get(step.goal);
        if (!known || (known.variant === variant && known.steps.length > steps.length)) chosen.set(step.goal, { variant, steps, last: state });
      }
    }
  }
  const candidates = [...chosen.values()].sort((a, b) => b.steps.length - a.steps.length);
  const kept: typeof candidates = [];
  for (const candidate of candidates) {
    const own = signature(candidate.steps);
    if (!kept.some((k) => k.variant === candidate.variant && `${signature(k.steps)} > `.startsWith(`${own} > `))) kept.push(candidate);
  }
  return kept.map(({ variant, steps, last }) => {
    const to = steps.at(-1)!.to;
    if (!spec.model.finals.includes(to)) steps = [...steps, ...(spec.model.transitions.some((t) => t.event === 'STOP') ? [stopStep(spec.model, to)] : toTheEnd(spec, last))];
    return { name: pathName(steps), variant, steps };
  });
}

/** From `snapshot` to a final state, each phase done (unguarded where it can choose). */
function toTheEnd(spec: PathSpec, snapshot: AnyMachineSnapshot): ModelStep[] {
  const steps: ModelStep[] = [];
  for (let from = snapshot; from.status !== 'done'; ) {
    const done = eventsFor(spec, from).filter((event) => event.outcome === 'done');
    const event = done.find((e) => e.guard === null) ?? done[0];
    if (!event || steps.length > 10) throw new Error(`no way to the end from ${valuePath(from.value)}`);
    const next = getNextSnapshot(spec.model.machine, from, event);
    steps.push(describeStep(spec.model.machine, spec.model, from, event, next));
    from = next;
  }
  return steps;
}

function stopStep(model: MachineModel, from: string): ModelStep {
  const transition = model.transitions.find((t) => t.source === from && t.event === 'STOP');
  if (!transition) throw new Error(`no STOP from ${from}`);
  return { from, to: transition.target, event: { type: 'STOP', outcome: 'stop', guard: null }, transition: transition.key, guard: null, goal: transition.key };
}

/** Every goal the paths reach (for the planner's own check; coverage comes from execution). */
export function plannedGoals(paths: ModelPath[]): Set<string> {
  return new Set(paths.flatMap((p) => p.steps.map((s) => s.goal)));
}

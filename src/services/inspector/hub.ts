import type { AnyStateMachine, InspectionEvent } from 'xstate';
import type { JobEvent } from '../interpreter.js';
import type { Id, Job, JobLogEntry } from '../store/types.js';
import { findEdge, guardName, machineGraph, type MachineGraph } from './graph.js';

export interface BlobTransfer {
  digest: string;
  size: number;
  bytes: number;
}

/** What a job's live view receives from its actor, in order. */
export type LiveEvent =
  | { type: 'transition'; from: string; to: string; edgeIds: string[]; event: string; at: string }
  | { type: 'blob'; digest: string; size: number; bytes: number; state: 'started' | 'progress' | 'done'; how?: string }
  | { type: 'log'; entry: Omit<JobLogEntry, 'seq'> }
  /** How many of the job's batches are in each state of the batch machine now (`batch.running.transferBlob`: 3). */
  | { type: 'batches'; states: Record<string, number> };

/** The part of a job's view that only the running actor knows. */
export interface LiveState {
  stateId: string;
  blobs: BlobTransfer[];
  batches: Record<string, number>;
}

/** How the worker pool tells the hub what one job's actor does. */
export interface JobObserver {
  inspect(event: InspectionEvent): void;
  event(event: JobEvent): void;
  log(entry: Omit<JobLogEntry, 'seq'>): void;
  done(): void;
}

interface Tracked {
  machine: string;
  stateId: string;
  blobs: Map<string, BlobTransfer>;
  /** The state of each batch under way, by its actor. */
  batches: Map<unknown, string>;
}

/**
 * The inspection streams of every job actor the service runs, turned into what a person
 * looks at: the state each job is in, the transitions it takes (as edges of the drawn
 * machine), its blob transfers and log lines, pushed to whoever watches that job.
 */
export class InspectorHub {
  readonly #graphs: Map<string, MachineGraph>;
  readonly #jobs = new Map<Id, Tracked>();
  readonly #listeners = new Map<Id, Set<(event: LiveEvent) => void>>();

  private constructor(graphs: Map<string, MachineGraph>) {
    this.#graphs = graphs;
  }

  /** Lays the machines out once, up front, so transitions map to edges as they happen. */
  static async create(machines: Record<string, AnyStateMachine>): Promise<InspectorHub> {
    const graphs = await Promise.all(Object.entries(machines).map(async ([name, machine]) => [name, await machineGraph(machine)] as const));
    return new InspectorHub(new Map(graphs));
  }

  graph(name: string): MachineGraph | undefined {
    return this.#graphs.get(name);
  }

  live(id: Id): LiveState | undefined {
    const tracked = this.#jobs.get(id);
    return tracked && { stateId: tracked.stateId, blobs: [...tracked.blobs.values()], batches: batchCounts(tracked) };
  }

  subscribe(id: Id, listener: (event: LiveEvent) => void): () => void {
    let listeners = this.#listeners.get(id);
    if (!listeners) this.#listeners.set(id, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.#listeners.delete(id);
    };
  }

  observe(job: Job): JobObserver {
    const machine = job.operation === 'copy' ? 'replication' : 'deletion';
    const tracked: Tracked = { machine, stateId: stateId(machine, job.status, job.phase), blobs: new Map(), batches: new Map() };
    this.#jobs.set(job.id, tracked);
    const publish = (event: LiveEvent) => {
      for (const listener of this.#listeners.get(job.id) ?? []) listener(event);
    };
    let root: unknown;
    return {
      inspect: (event) => {
        if (event.type === '@xstate.actor' && root === undefined) root = event.actorRef;
        if (event.type === '@xstate.snapshot' && event.actorRef !== root && (event.actorRef as { _parent?: unknown })._parent === root) {
          const snapshot = event.snapshot as unknown as { value?: unknown; status: string };
          if (snapshot.value === undefined) return;
          const before = JSON.stringify(batchCounts(tracked));
          if (snapshot.status === 'active') tracked.batches.set(event.actorRef, stateIdOf(BATCH_MACHINE, snapshot.value));
          else tracked.batches.delete(event.actorRef);
          const states = batchCounts(tracked);
          if (JSON.stringify(states) !== before) publish({ type: 'batches', states });
          return;
        }
        if (event.type !== '@xstate.microstep' || event.actorRef !== root) return;
        const to = stateIdOf(machine, (event.snapshot as unknown as { value: unknown }).value);
        const from = tracked.stateId;
        tracked.stateId = to;
        const graph = this.#graphs.get(machine)!;
        const edgeIds = event._transitions
          .map((t) => findEdge(graph, { source: t.source.id, eventType: t.eventType, targets: (t.target ?? []).map((n) => n.id), guard: guardName(t.guard) }))
          .filter((edge) => edge !== undefined)
          .map((edge) => edge.id);
        publish({ type: 'transition', from, to, edgeIds, event: event.event.type, at: new Date().toISOString() });
      },
      event: (event) => {
        if (event.type === 'blob.started' || event.type === 'blob.progress') {
          const bytes = event.type === 'blob.progress' ? event.bytes : 0;
          tracked.blobs.set(event.digest, { digest: event.digest, size: event.size, bytes });
          publish({ type: 'blob', digest: event.digest, size: event.size, bytes, state: event.type === 'blob.started' ? 'started' : 'progress' });
        } else if (event.type === 'blob.done') {
          tracked.blobs.delete(event.digest);
          publish({ type: 'blob', digest: event.digest, size: event.size, bytes: event.size, state: 'done', how: event.how });
        }
      },
      log: (entry) => publish({ type: 'log', entry }),
      done: () => this.#jobs.delete(job.id),
    };
  }
}

/** The machine a replication's batches run (its graph is drawn beside the job's). */
const BATCH_MACHINE = 'batch';

function batchCounts(tracked: Tracked): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const state of tracked.batches.values()) counts[state] = (counts[state] ?? 0) + 1;
  return counts;
}

/** The graph node of a job's state, from its stored status and phase. */
export function stateId(machine: string, status: string, phase: string | null): string {
  return phase && status === 'running' ? `${machine}.running.${phase}` : `${machine}.${status}`;
}

/** The deepest active state of a snapshot value: `{ running: 'pullManifest' }` → `replication.running.pullManifest`. */
function stateIdOf(machine: string, value: unknown): string {
  const path = [machine];
  let current = value;
  while (typeof current === 'object' && current !== null) {
    const [key, inner] = Object.entries(current)[0] ?? [];
    if (key === undefined) break;
    path.push(key);
    current = inner;
  }
  if (typeof current === 'string') path.push(current);
  return path.join('.');
}

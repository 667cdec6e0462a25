import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { Transition } from '../../src/services/store/types.js';
import { guardName, transitionKey, valuePath, type MachineModel } from './machine-model.js';

/**
 * What the executed paths actually did to one machine: the states its job actors were in and
 * the transitions they took (from the actors' inspection stream: every microstep with the
 * transition definitions it took), plus what only the store does (a pending job stopped
 * without an actor), from the persisted history rows.
 */
export class Coverage {
  readonly states = new Set<string>();
  readonly transitions = new Set<string>();
  readonly #model: MachineModel;
  readonly #keys: Set<string>;
  readonly #current = new Map<string, string>();

  constructor(model: MachineModel) {
    this.#model = model;
    this.#keys = new Set(model.transitions.map((t) => t.key));
  }

  /** An `inspect` callback for FerryService.start: the actors of this machine only (jobs, or the batches they spawn). */
  readonly inspect = (event: InspectionEvent): void => {
    const actor = event.actorRef as AnyActorRef & { logic?: { id?: string } };
    if (actor.logic?.id !== this.#model.machine.id) return;
    if (event.type !== '@xstate.microstep' && event.type !== '@xstate.snapshot') return;
    const snapshot = event.snapshot as { value?: unknown };
    if (snapshot.value === undefined) return;
    const state = valuePath(snapshot.value);
    if (event.type === '@xstate.microstep') {
      const from = this.#current.get(actor.sessionId);
      for (const taken of event._transitions) {
        if (from !== undefined) this.#take(transitionKey(from, taken.eventType, guardName(taken), state));
      }
    }
    this.#current.set(actor.sessionId, state);
    if (this.#model.states.includes(state)) this.states.add(state);
  };

  /** Persisted history rows that match exactly one model transition (source, event, target). */
  recordHistory(rows: Transition[]): void {
    const state = (name: string) => (name.startsWith('retrying.') ? 'retrying' : name);
    for (const row of rows) {
      if (row.from === null) continue;
      const matches = this.#model.transitions.filter((t) => t.source === state(row.from!) && t.event === row.event && t.target === state(row.to));
      if (matches.length === 1) {
        this.#take(matches[0]!.key);
        this.states.add(matches[0]!.source).add(matches[0]!.target);
      }
    }
  }

  #take(key: string): void {
    if (!this.#keys.has(key)) throw new Error(`an executed transition is not in the model: ${key}`);
    this.transitions.add(key);
  }

  missing(): { states: string[]; transitions: string[] } {
    return {
      states: this.#model.states.filter((s) => !this.states.has(s)),
      transitions: this.#model.transitions.map((t) => t.key).filter((k) => !this.transitions.has(k)),
    };
  }

  report(): string {
    const pct = (n: number, d: number) => `${((100 * n) / d).toFixed(0)}%`;
    const { states, transitions } = this.#model;
    const missing = this.missing();
    return [
      `${this.#model.machine.id}: states covered ${this.states.size}/${states.length} (${pct(this.states.size, states.length)}), transitions covered ${this.transitions.size}/${transitions.length} (${pct(this.transitions.size, transitions.length)})`,
      ...missing.states.map((s) => `  state not covered: ${s}`),
      ...missing.transitions.map((t) => `  transition not covered: ${t}`),
    ].join('\n');
  }
}

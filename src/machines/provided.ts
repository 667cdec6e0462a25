import { fromPromise, type EventObject } from 'xstate';

/**
 * A typed placeholder for an actor the machine invokes by name. The machines hold no side
 * effects: `src/actors` implements them, wired in with `machine.provide({ actors })`.
 */
export function provided<TOutput, TInput, TEmitted extends EventObject = EventObject>(name: string) {
  return fromPromise<TOutput, TInput, TEmitted>(() => Promise.reject(new Error(`actor "${name}" was not provided to the machine`)));
}

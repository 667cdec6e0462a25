import { EventEmitter } from 'node:events';
import type { Signal, Signals } from './types.js';

/** Signals within one process: what a single node on SQLite needs. */
export function localSignals(): Signals & { emit(signal: Signal): void } {
  const bus = new EventEmitter<{ signal: [Signal] }>();
  bus.setMaxListeners(0);
  return {
    emit: (signal) => bus.emit('signal', signal),
    publish: async (signal) => {
      bus.emit('signal', signal);
    },
    subscribe: (listener) => {
      bus.on('signal', listener);
      return () => bus.off('signal', listener);
    },
    // Nothing to reconnect.
    onReconnect: () => () => {},
  };
}

import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import WebSocket from 'ws';
import type { InspectionEvent } from 'xstate';

/** Where `npx ferry stately-inspector` listens, and where `--inspect` connects by default. */
export const STATELY_INSPECTOR_URL = 'ws://127.0.0.1:8081';

const RECONNECT_MS = 5_000;
const MAX_DEFERRED = 1_000;

/**
 * Sends every job actor's inspection stream to Stately's inspector (through the WebSocket
 * bridge of `@statelyai/inspect/server`), reconnecting quietly while nobody listens.
 * `createWebSocketInspector` would do the same, but its retry timer outlives `stop()` and
 * keeps the process from exiting; this adapter's does not.
 */
export function statelyInspector(url: string): { inspect: (event: InspectionEvent) => void; stop: () => void } {
  let socket: WebSocket | undefined;
  let retry: NodeJS.Timeout | undefined;
  let stopped = false;
  const deferred: string[] = [];
  const connect = () => {
    socket = new WebSocket(url);
    socket.on('open', () => {
      for (const message of deferred.splice(0)) socket?.send(message);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (!stopped) retry = setTimeout(connect, RECONNECT_MS).unref();
    });
  };
  const inspector = createInspector(
    {
      start: connect,
      stop: () => {
        stopped = true;
        clearTimeout(retry);
        socket?.terminate();
      },
      send: (event: StatelyInspectionEvent) => {
        const message = JSON.stringify(event, acyclic());
        if (socket?.readyState === WebSocket.OPEN) socket.send(message);
        else if (deferred.push(message) > MAX_DEFERRED) deferred.shift();
      },
    },
  );
  inspector.start();
  return { inspect: (event) => inspector.inspect.next?.(event), stop: () => inspector.stop() };
}

/** A JSON replacer that drops what it has already seen (snapshots can point back at themselves). */
function acyclic(): (key: string, value: unknown) => unknown {
  const seen = new WeakSet<object>();
  return (_key, value) => {
    if (typeof value !== 'object' || value === null) return value;
    if (seen.has(value)) return undefined;
    seen.add(value);
    return value;
  };
}

import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Signal, Signals } from '../types.js';

const CHANNEL = 'ferry';
const RECONNECT_MS = 1_000;
/** PostgreSQL refuses payloads of 8000 bytes or more. */
const MAX_PAYLOAD = 7_900;

/**
 * Signals between nodes over LISTEN/NOTIFY. The listener holds a connection of its own (a
 * pooled one would be handed to queries). A notification sent while it is disconnected is
 * lost, so after each reconnection the `onReconnect` listeners re-read what they care about.
 */
export function postgresSignals(url: string, pool: pg.Pool, log: (message: string, error: unknown) => void): Signals & { ready: Promise<void>; close(): Promise<void> } {
  const listeners = new Set<(signal: Signal) => void>();
  const reconnected = new Set<() => void>();
  let closed = false;
  let client: pg.Client | undefined;

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url });
    next.on('notification', (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      const signal = JSON.parse(message.payload) as Signal;
      for (const listener of listeners) listener(signal);
    });
    next.on('error', (error) => log('the PostgreSQL connection for signals failed', error));
    next.on('end', () => {
      if (client !== next || closed) return;
      client = undefined;
      void reconnect();
    });
    await next.connect();
    try {
      await next.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      await next.end();
      throw error;
    }
    client = next;
  };

  const reconnect = async (): Promise<void> => {
    while (!closed) {
      await sleep(RECONNECT_MS);
      try {
        await connect();
        for (const listener of reconnected) listener();
        return;
      } catch (error) {
        log('reconnecting for signals failed; trying again', error);
      }
    }
  };

  return {
    ready: connect(),
    publish: async (signal) => {
      const payload = JSON.stringify(signal);
      // Live bytes too large to carry are dropped: the next step's stored change tells the same.
      // Other signals are small by construction.
      if (signal.type === 'progress' && Buffer.byteLength(payload) >= MAX_PAYLOAD) return;
      await pool.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]);
    },
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onReconnect: (listener) => {
      reconnected.add(listener);
      return () => reconnected.delete(listener);
    },
    close: async () => {
      closed = true;
      await client?.end();
    },
  };
}

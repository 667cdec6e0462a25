import { createWebSocketInspector } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';

/** Where `npx ferry stately-inspector` listens, and where `--inspect` connects by default. */
export const STATELY_INSPECTOR_URL = 'ws://127.0.0.1:8081';

/**
 * Sends every job actor's inspection stream to Stately's inspector (through the WebSocket
 * bridge of `@statelyai/inspect/server`). It reconnects quietly while nobody listens.
 */
export function statelyInspector(url: string): { inspect: (event: InspectionEvent) => void; stop: () => void } {
  const inspector = createWebSocketInspector({ url });
  inspector.start();
  return { inspect: (event) => inspector.inspect.next?.(event), stop: () => inspector.stop() };
}

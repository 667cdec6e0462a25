import { createInspectorServer } from '@statelyai/inspect/server';
import type { CommandIO } from './io.js';
import { positiveInteger } from './usage.js';

export async function statelyInspectorCommand(values: { port?: string; open: boolean }, io: CommandIO): Promise<number> {
  const port = positiveInteger(values.port, '--port', 8081);
  const server = createInspectorServer({ port, autoOpen: values.open });
  io.stdout.write(`bridging ws://127.0.0.1:${port} to Stately's inspector; run ferry with --inspect (Ctrl-C to stop)\n`);
  await io.interrupted;
  server.stop();
  return 0;
}

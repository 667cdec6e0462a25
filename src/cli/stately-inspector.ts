import { parseArgs } from 'node:util';
import { createInspectorServer } from '@statelyai/inspect/server';
import type { CommandIO } from './io.js';
import { positiveInteger, UsageError } from './usage.js';

export const STATELY_USAGE = `Usage: ferry stately-inspector [--port 8081] [--no-open]

Bridges the inspection streams of "ferry serve --inspect" and "ferry copy --inspect" to
Stately's inspector page in your browser (which needs network access; ferry's own console
at the service's address does not).`;

export async function statelyInspectorCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { port: { type: 'string' }, 'no-open': { type: 'boolean' } } });
  if (positionals.length > 0) throw new UsageError(`stately-inspector takes no arguments, got "${positionals[0]}"`);
  const port = positiveInteger(values.port, '--port', 8081);
  const server = createInspectorServer({ port, autoOpen: !values['no-open'] });
  io.stdout.write(`bridging ws://127.0.0.1:${port} to Stately's inspector; run ferry with --inspect (Ctrl-C to stop)\n`);
  await io.interrupted;
  server.stop();
  return 0;
}

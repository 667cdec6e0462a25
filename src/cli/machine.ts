import { parseArgs } from 'node:util';
import type { AnyStateMachine } from 'xstate';
import { deletionMachine } from '../machines/deletion.js';
import { toMermaid } from '../machines/mermaid.js';
import { replicationMachine } from '../machines/replication.js';
import { UsageError } from './usage.js';

export const MACHINE_USAGE = `Usage: ferry machine [--json|--mermaid] [replication|deletion]

Prints a job machine's definition: JSON (default) or a Mermaid state diagram.`;

export const MACHINES: Record<string, AnyStateMachine> = { replication: replicationMachine, deletion: deletionMachine };

export function machineCommand(argv: string[], stdout: NodeJS.WritableStream): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, mermaid: { type: 'boolean' } },
  });
  if (values.json && values.mermaid) throw new UsageError('choose one of --json and --mermaid');
  if (positionals.length > 1) throw new UsageError('machine takes at most one machine name');
  const name = positionals[0] ?? 'replication';
  const machine = MACHINES[name];
  if (!machine) throw new UsageError(`unknown machine "${name}": replication or deletion`);
  stdout.write(values.mermaid ? toMermaid(machine) : `${JSON.stringify(machine.toJSON(), null, 2)}\n`);
  return 0;
}

import type { AnyStateMachine } from 'xstate';
import { batchMachine } from '../machines/batch.js';
import { deletionMachine } from '../machines/deletion.js';
import { toMermaid } from '../machines/mermaid.js';
import { replicationMachine } from '../machines/replication.js';
import { UsageError } from './usage.js';

export const MACHINES: Record<string, AnyStateMachine> = { replication: replicationMachine, batch: batchMachine, deletion: deletionMachine };

export function machineCommand(name: string, values: { json?: boolean; mermaid?: boolean }, stdout: NodeJS.WritableStream): number {
  if (values.json && values.mermaid) throw new UsageError('choose one of --json and --mermaid');
  const machine = MACHINES[name];
  if (!machine) throw new UsageError(`unknown machine "${name}": ${Object.keys(MACHINES).join(", ")}`);
  stdout.write(values.mermaid ? toMermaid(machine) : `${JSON.stringify(machine.toJSON(), null, 2)}\n`);
  return 0;
}

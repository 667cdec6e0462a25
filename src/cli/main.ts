#!/usr/bin/env node
import { once } from 'node:events';
import { RegistryError } from '../services/registry/errors.js';
import type { CommandIO } from './io.js';
import { UsageError } from './usage.js';

const USAGE = `Usage: ferry <command> [options]

Commands:
  copy SRC DST      copy a repository, tag or digest between registries
  serve             run the job service (REST API, workers, triggers)
  sync -c FILE      run the policies of a ferry.yaml once and print a summary
  jobs, executions, policies, nodes
                    list, show, stop, retry, follow logs on a running service
  machine           print the job machine (JSON or Mermaid)
  secrets rotate    seal the stored registry passwords with a new key
  stately-inspector bridge --inspect streams to Stately's inspector

Run "ferry <command> --help" for a command's options.`;

interface Command {
  usage: string;
  run(args: string[], io: CommandIO): Promise<number> | number;
}

/**
 * Each command's module is loaded only when it runs: `ferry copy` does not pay for the
 * service's web server and database.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  copy: async () => {
    const { COPY_USAGE, copyCommand } = await import('./copy.js');
    return { usage: COPY_USAGE, run: copyCommand };
  },
  serve: async () => {
    const { SERVE_USAGE, serveCommand } = await import('./serve.js');
    return { usage: SERVE_USAGE, run: serveCommand };
  },
  sync: async () => {
    const { SYNC_USAGE, syncCommand } = await import('./sync.js');
    return { usage: SYNC_USAGE, run: syncCommand };
  },
  machine: async () => {
    const { MACHINE_USAGE, machineCommand } = await import('./machine.js');
    return { usage: MACHINE_USAGE, run: (args, io) => machineCommand(args, io.stdout) };
  },
  secrets: async () => {
    const { SECRETS_USAGE, secretsCommand } = await import('./secrets.js');
    return { usage: SECRETS_USAGE, run: secretsCommand };
  },
  'stately-inspector': async () => {
    const { STATELY_USAGE, statelyInspectorCommand } = await import('./stately-inspector.js');
    return { usage: STATELY_USAGE, run: statelyInspectorCommand };
  },
  ...Object.fromEntries(
    ['jobs', 'executions', 'policies', 'nodes'].map((resource) => [
      resource,
      async (): Promise<Command> => {
        const { REMOTE_USAGE, remoteCommand } = await import('./remote.js');
        return { usage: REMOTE_USAGE, run: (args, io) => remoteCommand(resource, args, io) };
      },
    ]),
  ),
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) return reportFailure(new UsageError(`unknown command "${name}"`), USAGE);
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, commandIO());
  } catch (error) {
    return reportFailure(error, command.usage);
  }
}

/** Usage problems (including a malformed reference) exit 2; anything else exits 1. */
function reportFailure(error: unknown, usage: string): number {
  const usageProblem =
    error instanceof UsageError ||
    (error instanceof RegistryError && (error.code === 'INVALID_REFERENCE' || error.code === 'INVALID_CONFIG')) ||
    (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`ferry: ${message}\n`);
  if (usageProblem) {
    process.stderr.write(`\n${usage}\n`);
    return 2;
  }
  return 1;
}

function commandIO(): CommandIO {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, interrupted: interrupted() };
}

/** The first Ctrl-C (or SIGTERM) asks the job to stop; a second one exits at once. */
async function interrupted(): Promise<void> {
  await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
}

process.exitCode = await main(process.argv.slice(2));

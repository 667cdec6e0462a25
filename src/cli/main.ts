#!/usr/bin/env node
import { once } from 'node:events';
import { RegistryError } from '../services/registry/errors.js';
import { COPY_USAGE, copyCommand } from './copy.js';
import type { CommandIO } from './io.js';
import { MACHINE_USAGE, machineCommand } from './machine.js';
import { REMOTE_USAGE, remoteCommand } from './remote.js';
import { SERVE_USAGE, serveCommand } from './serve.js';
import { STATELY_USAGE, statelyInspectorCommand } from './stately-inspector.js';
import { SYNC_USAGE, syncCommand } from './sync.js';
import { UsageError } from './usage.js';

const USAGE = `Usage: ferry <command> [options]

Commands:
  copy SRC DST      copy a repository, tag or digest between registries
  serve             run the job service (REST API, workers, triggers)
  sync -c FILE      run the policies of a ferry.yaml once and print a summary
  jobs, executions, policies
                    list, show, stop, retry, follow logs on a running service
  machine           print the job machine (JSON or Mermaid)
  stately-inspector bridge --inspect streams to Stately's inspector

Run "ferry <command> --help" for a command's options.`;

const HELP: Record<string, string> = {
  copy: COPY_USAGE,
  serve: SERVE_USAGE,
  sync: SYNC_USAGE,
  machine: MACHINE_USAGE,
  'stately-inspector': STATELY_USAGE,
  jobs: REMOTE_USAGE,
  executions: REMOTE_USAGE,
  policies: REMOTE_USAGE,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    const help = HELP[command];
    if (help) {
      process.stdout.write(`${help}\n`);
      return 0;
    }
  }
  try {
    switch (command) {
      case 'copy':
        return await copyCommand(rest, commandIO());
      case 'serve':
        return await serveCommand(rest, commandIO());
      case 'sync':
        return await syncCommand(rest, commandIO());
      case 'jobs':
      case 'executions':
      case 'policies':
        return await remoteCommand(command, rest, commandIO());
      case 'machine':
        return machineCommand(rest, process.stdout);
      case 'stately-inspector':
        return await statelyInspectorCommand(rest, commandIO());
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    return reportFailure(error, HELP[command] ?? USAGE);
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

#!/usr/bin/env node
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { CommanderError, type Command } from 'commander';
import { RegistryError } from '../services/registry/errors.js';
import type { CommandIO } from './io.js';
import { buildProgram, type Runner } from './program.js';
import { UsageError } from './usage.js';

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const run: Runner = (action) => async (...args) => {
    const command = args.at(-1) as Command;
    try {
      exitCode = await action(command, commandIO());
    } catch (error) {
      exitCode = reportFailure(error, command);
    }
  };
  const program = buildProgram(run);
  if (argv.length === 0) {
    process.stdout.write(program.helpInformation());
    return 2;
  }
  forEachCommand(program, (command) =>
    command
      // Commander's own messages go through reportFailure, one line like every usage error.
      .configureOutput({ outputError: () => undefined, writeErr: () => undefined })
      .exitOverride((error) => {
        throw Object.assign(error, { command });
      }),
  );
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
    const command = (error as CommanderError & { command: Command }).command;
    const message = error.code === 'commander.help' ? `${command.name()} needs a command: ${command.commands.map((c) => c.name()).join(', ')}` : error.message.replace(/^error: /, '');
    return reportFailure(new UsageError(message), command);
  }
  return exitCode;
}

function forEachCommand(command: Command, visit: (command: Command) => void): void {
  visit(command);
  for (const sub of command.commands) forEachCommand(sub, visit);
}

/** `ferry jobs ls`, for the pointer to its help. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Usage problems (including a malformed reference) exit 2 with a pointer to the help; anything else exits 1. */
function reportFailure(error: unknown, command: Command): number {
  const usageProblem =
    error instanceof UsageError || (error instanceof RegistryError && (error.code === 'INVALID_REFERENCE' || error.code === 'INVALID_CONFIG'));
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(usageProblem ? `ferry: ${message} (see ${commandPath(command)} --help)\n` : `ferry: ${message}\n`);
  return usageProblem ? 2 : 1;
}

function commandIO(): CommandIO {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, interrupted: interrupted() };
}

/** The first Ctrl-C (or SIGTERM) asks the job to stop; a second one exits at once. */
async function interrupted(): Promise<void> {
  await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
}

/**
 * undici parses HTTP with llhttp, compiled to WebAssembly when the first connection opens. V8
 * compiles it with Liftoff, then recompiles it with TurboFan on background threads, which a
 * command pays for and never earns back: one `ferry copy` of a tag already copied cost 610 ms
 * of CPU and 100 MB of peak RSS with TurboFan, 440 ms and 66 MB without; even GETting 980 MiB
 * in 2 MiB blobs cost 1.55 s with it, 1.31 s without. `ferry serve`, which runs for days,
 * keeps V8's default.
 */
if (process.argv[2] !== 'serve') setFlagsFromString('--liftoff-only');

process.exitCode = await main(process.argv.slice(2));

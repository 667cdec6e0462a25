import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { toPromise } from 'xstate';
import { DEFAULT_RETRY } from '../../src/machines/retry.js';
import type { ReplicationInput } from '../../src/machines/replication.js';
import { BlobLocator } from '../../src/services/blob-locator.js';
import { Cleanups } from '../../src/services/cleanups.js';
import { batchPhases, jobPhase, jobStatus } from '../../src/machines/status.js';
import { createReplication, type Environment, type JobEvent, type ReplicationActor } from '../../src/services/interpreter.js';
import { Registries } from '../../src/services/registry/registries.js';
import type { Credentials } from '../../src/services/registry/credentials.js';
import { globFilter } from '../../src/services/tag-filter.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The built `ferry` command, as a user runs it (npm test builds first). */
export function spawnFerry(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, HOME: '/nonexistent-ferry-home', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function ferry(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return collect(spawnFerry(args, env));
}

export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface InProcessOptions {
  credentials?: Record<string, Credentials>;
  locator?: BlobLocator;
  transfer?: Environment['transfer'];
}

/** The engine without the CLI: an environment with real clients for the given registries. */
export function environment(options: InProcessOptions = {}): Environment {
  return {
    registries: new Registries(async (registry) => ({
      registry,
      ...(options.credentials?.[registry] ? { credentials: options.credentials[registry] } : {}),
    })),
    locator: options.locator ?? new BlobLocator(),
    cleanups: new Cleanups(),
    logger: pino({ level: 'silent' }),
    ...(options.transfer ? { transfer: options.transfer } : {}),
  };
}

export function replicationInput(source: string, destination: string, overrides: Partial<ReplicationInput> = {}): ReplicationInput {
  const [srcRegistry, ...srcPath] = source.split('/');
  const [dstRegistry, ...dstPath] = destination.split('/');
  return {
    source: { registry: srcRegistry!, repository: srcPath.join('/') },
    destination: { registry: dstRegistry!, repository: dstPath.join('/') },
    tagFilter: globFilter([]),
    platforms: [],
    override: true,
    bandwidthKiBps: null,
    batchSize: 1,
    batchesInFlight: 8,
    blobConcurrency: 4,
    retry: { ...DEFAULT_RETRY, baseDelayMs: 50, maxDelayMs: 200 },
    dryRun: false,
    referrers: 'all',
    ...overrides,
  };
}

export interface Replicated {
  actor: ReplicationActor;
  status: string;
  events: JobEvent[];
  statuses: string[];
  /** The phase of each retry a batch took (the job itself stays running meanwhile). */
  batchRetries: string[];
}

/** Runs a replication to its end in this process, recording events and statuses. */
export async function replicate(input: ReplicationInput, env: Environment = environment()): Promise<Replicated> {
  const events: JobEvent[] = [];
  const statuses: string[] = [];
  const actor = createReplication(input, env, { onEvent: (e) => events.push(e) });
  actor.subscribe((s) => {
    const status = jobStatus(s);
    if (statuses.at(-1) !== status) statuses.push(status);
  });
  actor.start();
  actor.send({ type: 'START' });
  await toPromise(actor);
  // What the job left running (the check's upload session, cancelled as the job goes on) is done too.
  await env.cleanups?.settled(10_000);
  const batchRetries = events.flatMap((event) => (event.type === 'batch.retrying' ? [event.phase] : []));
  return { actor, status: jobStatus(actor.getSnapshot()), events, statuses, batchRetries };
}

/** Where a job is: its phase, or while it copies, the phases of its batches (`transferBlob`, `pullManifest,retrying`). */
export function currentPhase(snapshot: { value: unknown; children: Record<string, unknown> }): string | undefined {
  const phase = jobPhase(snapshot);
  return phase === 'copying' ? batchPhases(snapshot).join(',') : phase;
}

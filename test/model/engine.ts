import { setTimeout as sleep } from 'node:timers/promises';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { batchMachine } from '../../src/machines/batch.js';
import type { ErrorInfo } from '../../src/services/registry/errors.js';
import pino from 'pino';
import { expect } from 'vitest';
import { FerryService } from '../../src/services/service.js';
import type { Id, Job, JobOperation, JobStatus } from '../../src/services/store/types.js';
import type { Fault, FaultProxy } from '../support/fault-proxy.js';
import type { Coverage } from './coverage.js';
import { valuePath } from './machine-model.js';
import type { ModelStep } from './paths.js';

/**
 * The real engine under a path: a FerryService (worker pool, SQLite store, registry client)
 * on its own database, one job, and the fault proxies steered one step at a time.
 */

export interface Marker {
  proxy: FaultProxy;
  /** Any method when left out. */
  method?: string;
  path: RegExp;
}

/** A request held at the proxy: the job is known to be in the phase that sent it until it is released. */
export interface Held {
  arrived: Promise<void>;
  release(fault?: Fault): void;
}

export class Steering {
  readonly #releases: Array<() => void> = [];

  hold({ proxy, method, path }: Marker): Held {
    const held = proxy.hold({ ...(method ? { method } : {}), path });
    this.#releases.push(() => held.release({ type: 'reset' }));
    return { arrived: within(held.arrived, 15_000, `${method ?? 'a request'} ${path} to arrive`).then(() => undefined), release: (fault) => held.release(fault) };
  }

  /**
   * Ends every request still held with a reset: they belong to stopped jobs (or nobody), and a
   * request forwarded now would reach the registry if the proxy has not yet seen its client go.
   */
  releaseAll(): void {
    for (const release of this.#releases.splice(0)) release();
  }
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The state and error of the job's batch under way (the model paths run one batch at a time). */
export interface BatchView {
  state: string | undefined;
  error: ErrorInfo | undefined;
}

export interface Engine {
  service: FerryService;
  job: Job;
  batch: BatchView;
  /** Every persisted change of the job (status, phase), in order, from the service's feed. */
  changes: Array<{ status: JobStatus; phase: string | null }>;
  close(): Promise<void>;
}

export async function startEngine(options: {
  database: string;
  coverage: Coverage[];
  registries: string[];
  job: { operation: JobOperation; source: string | null; destination: string; input: unknown };
}): Promise<Engine> {
  const batch: BatchView = { state: undefined, error: undefined };
  const inspect = (event: InspectionEvent) => {
    for (const coverage of options.coverage) coverage.inspect(event);
    const actor = event.actorRef as AnyActorRef & { logic?: { id?: string } };
    if (event.type !== '@xstate.snapshot' || actor.logic?.id !== batchMachine.id) return;
    const snapshot = event.snapshot as unknown as { value: unknown; context: { error?: ErrorInfo } };
    [batch.state, batch.error] = [valuePath(snapshot.value), snapshot.context.error];
  };
  const service = await FerryService.start({ database: options.database, workers: 1, logger: pino({ level: 'silent' }), inspect });
  for (const [i, url] of options.registries.entries()) await service.store.registries.create({ name: `registry-${i}`, url });
  const { jobs } = await service.store.executions.create({ policyId: null, trigger: 'manual', jobs: [options.job] });
  const job = jobs[0]!;
  const changes: Engine['changes'] = [];
  service.feed.subscribe((change) => {
    if (change.jobId === job.id) changes.push({ status: change.status, phase: change.phase });
  });
  return { service, job, batch, changes, close: () => service.close() };
}


/** The persisted job once it is in `state` (an atomic state path of the machine). */
export async function persistedIn(engine: Engine, state: string, failedPhase?: string): Promise<Job> {
  const [status, phase] = state.split('.') as [JobStatus, string | undefined];
  const job = await until(`job in ${state}`, async () => {
    const j = await engine.service.store.jobs.get(engine.job.id);
    return j && j.status === status && (phase === undefined || j.phase === phase) ? j : undefined;
  });
  if (status === 'running') expect(job.error).toBeNull();
  if (status === 'retrying') {
    expect(job.phase, 'a retrying job keeps the phase it resumes').toBe(failedPhase);
    expect(job.error?.transient).toBe(true);
  }
  return job;
}

/** Once the job's batch is in `state` (the job's own state is `running.copying` meanwhile). */
export async function batchIn(engine: Engine, state: string): Promise<BatchView> {
  return until(`batch in ${state}`, async () => engine.batch.state === state && { ...engine.batch });
}

/** The history rows a path must leave: one per change of status or phase (a phase entered again leaves none). */
export function expectedHistory(steps: ModelStep[]): string[] {
  const rows = ['pending'];
  let phase = '';
  for (const step of steps) {
    if (step.from === 'pending' && step.event.outcome === 'start') rows.push('running');
    if (step.from.startsWith('running.')) phase = step.from.slice('running.'.length);
    const to = step.to === 'retrying' ? `retrying.${phase}` : step.to;
    if (to !== rows.at(-1)) rows.push(to);
  }
  return rows;
}

/** What a step's outcome looks like from the outside: the kind of error it should have left. */
export function errorKind(step: ModelStep): 'transient' | 'permanent' | 'exhausted' | undefined {
  // A batch that gives up ends the job: the model paths make it give up with a permanent error.
  if (step.event.outcome === 'permanent' || step.guard === 'batchFailed') return 'permanent';
  if (step.event.outcome === 'transient') return step.to === 'retrying' ? 'transient' : 'exhausted';
  return undefined;
}

export type { Id };

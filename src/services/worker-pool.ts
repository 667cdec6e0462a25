import type { Logger } from 'pino';
import type { AnyActor, InspectionEvent, Snapshot } from 'xstate';
import type { DeletionInput } from '../machines/deletion.js';
import type { ReplicationInput } from '../machines/replication.js';
import { jobPhase, jobStatus } from '../machines/status.js';
import { createDeletion, createReplication, type Environment, type JobEvent } from './interpreter.js';
import { jobLogger, type JobLogger } from './job-logger.js';
import type { JobObserver } from './inspector/hub.js';
import type { ErrorInfo } from './registry/errors.js';
import type { Id, Job, JobStatus, JobStore } from './store/types.js';

export interface JobChange {
  jobId: Id;
  executionId: Id;
  status: JobStatus;
  phase: string | null;
  attempt: number;
  progress: Record<string, number>;
  error: ErrorInfo | null;
}

/** A stored job as a change (queued, stopped while pending, requeued). */
export function jobChange(job: Job): JobChange {
  return { jobId: job.id, executionId: job.executionId, status: job.status, phase: job.phase, attempt: job.attempt, progress: job.progress, error: job.error };
}

export interface WorkerPoolOptions {
  store: JobStore;
  environment: Environment;
  /** Jobs running (or waiting to retry) at once. */
  workers: number;
  /** Every persisted change of a job's status or phase, and its bytes while it transfers. */
  onChange?: (change: JobChange) => void;
  /** Watches each job's actor (the inspector): its inspection stream, events and log lines. */
  observe?: (job: Job) => JobObserver;
  /** Every job actor's inspection stream, as it is (the Stately inspector). */
  inspect?: (event: InspectionEvent) => void;
}

interface Active {
  job: Job;
  actor: AnyActor;
  log: JobLogger;
  done: Promise<void>;
}

/**
 * Runs queued jobs, at most `workers` at a time, each as an actor of its machine. Every
 * step is written to the store (status, phase, history, snapshot) as the machine takes it,
 * so a job found running after a crash resumes from its last step.
 */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #active = new Map<Id, Active>();
  #filling: Promise<void> | undefined;
  #refill = false;
  #closed = false;

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
  }

  /** Resumes the jobs a previous process left running, then takes queued ones. */
  async start(): Promise<void> {
    for (const job of await this.#options.store.interruptedJobs()) {
      this.#run(job, await this.#options.store.jobSnapshot(job.id));
    }
    this.wake();
  }

  /** Takes queued jobs while workers are free. */
  wake(): void {
    if (this.#closed) return;
    if (this.#filling) {
      this.#refill = true;
      return;
    }
    this.#filling = this.#fill().finally(() => {
      this.#filling = undefined;
      if (this.#refill) {
        this.#refill = false;
        this.wake();
      }
    });
  }

  get running(): number {
    return this.#active.size;
  }

  /**
   * STOP for a job in any status: a pending job ends at once, a running or retrying one gets
   * the machine's STOP (its transfers are aborted). False when it has already ended.
   */
  async stop(id: Id): Promise<boolean> {
    const active = this.#active.get(id);
    if (active) {
      active.actor.send({ type: 'STOP' });
      await active.done;
      return true;
    }
    const stopped = await this.#options.store.stopPendingJob(id);
    if (stopped) this.#notify(await this.#options.store.getJob(id));
    return stopped;
  }

  /** Runs a failed or stopped job again from the start; what already reached the destination is skipped. */
  async retry(id: Id): Promise<boolean> {
    const requeued = await this.#options.store.requeueJob(id);
    if (requeued) {
      this.#notify(await this.#options.store.getJob(id));
      this.wake();
    }
    return requeued;
  }

  /**
   * Stops taking jobs and halts the running actors where they are, without a STOP: their
   * last persisted step is where the next start resumes them.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#filling;
    for (const active of this.#active.values()) active.actor.stop();
    await Promise.all([...this.#active.values()].map((active) => active.log.flush()));
    this.#active.clear();
  }

  async #fill(): Promise<void> {
    while (!this.#closed && this.#active.size < this.#options.workers) {
      const job = await this.#options.store.claimNextJob();
      if (!job) return;
      this.#run(job, undefined);
    }
  }

  #run(job: Job, snapshot: unknown): void {
    const { store, environment } = this.#options;
    const observer = this.#options.observe?.(job);
    const log = jobLogger(store, environment.logger, { jobId: job.id, executionId: job.executionId }, observer && ((entry) => observer.log(entry)));
    let last = { status: job.status as string, phase: job.phase };
    let actor: AnyActor | undefined;
    const persist = (event: InspectionEvent) => {
      this.#options.inspect?.(event);
      observer?.inspect(event);
      if (event.type !== '@xstate.snapshot' || event.actorRef !== actor) return;
      const state = event.snapshot as Snapshot<unknown> & { value: unknown; context: JobContext };
      // A halted actor (close) must not overwrite the step it is to resume from.
      if (state.status === 'stopped') return;
      const status = jobStatus(state);
      // Before START the machine is in pending, which the store already says.
      if (status === 'pending') return;
      const phase = jobPhase(state) ?? (status === 'retrying' ? last.phase : null);
      const moved = status !== last.status || phase !== last.phase;
      const { context } = state;
      const error = status === 'error' || status === 'retrying' ? (context.error ?? null) : null;
      void store.saveStep(job.id, {
        status,
        phase,
        attempt: context.attempt,
        progress: context.progress,
        error,
        snapshot: actor!.getPersistedSnapshot(),
        ...(moved ? { transition: { from: describe(last.status, last.phase), to: describe(status, phase), event: event.event.type } } : {}),
      });
      if (!moved) return;
      if (status === 'retrying') {
        log.logger.warn({ attempt: context.attempt, retryAt: context.retryAt && new Date(context.retryAt).toISOString(), error }, `retrying ${phase}: ${error?.message}`);
      } else if (status === 'error') {
        log.logger.error({ error }, `failed in ${last.phase}: ${error?.message}`);
      } else {
        log.logger.info({ status, phase, event: event.event.type }, phase ? `${status}: ${phase}` : status);
      }
      last = { status, phase };
      if (phase !== 'transferBlob') inflight.clear();
      this.#options.onChange?.({ jobId: job.id, executionId: job.executionId, status, phase, attempt: context.attempt, progress: context.progress, error });
    };
    // Live bytes for list views: what the last step stored plus the blobs in flight, at most
    // every PROGRESS_INTERVAL_MS (not persisted; the next step stores the real count).
    const inflight = new Map<string, number>();
    let progressed = 0;
    const transferring = (event: JobEvent) => {
      if (event.type === 'blob.progress') inflight.set(event.digest, event.bytes);
      else if (event.type === 'blob.done') inflight.set(event.digest, event.how === 'copied' ? event.size : 0);
      else return;
      const now = Date.now();
      if (now - progressed < PROGRESS_INTERVAL_MS || !actor) return;
      progressed = now;
      const { context } = actor.getSnapshot() as { context: JobContext };
      const bytesCopied = (context.progress.bytesCopied ?? 0) + [...inflight.values()].reduce((sum, n) => sum + n, 0);
      this.#options.onChange?.({ jobId: job.id, executionId: job.executionId, status: 'running', phase: last.phase, attempt: context.attempt, progress: { ...context.progress, bytesCopied }, error: null });
    };
    const options = {
      ...(snapshot ? { snapshot: snapshot as Snapshot<unknown> } : {}),
      inspect: persist,
      onEvent: (event: JobEvent) => {
        observer?.event(event);
        logEvent(log.logger.child({ phase: last.phase }), event);
        transferring(event);
      },
    };
    actor =
      job.operation === 'copy'
        ? createReplication(job.input as ReplicationInput, environment, options)
        : createDeletion(job.input as DeletionInput, environment, options);
    const done = new Promise<void>((resolve) => {
      actor!.subscribe({
        next: (state: { status: string }) => state.status === 'done' && resolve(),
        complete: resolve,
        error: (error: unknown) => {
          log.logger.error({ err: error }, 'the job machine failed');
          resolve();
        },
      });
    }).then(async () => {
      await log.flush();
      observer?.done();
      this.#active.delete(job.id);
      this.wake();
    });
    this.#active.set(job.id, { job, actor, log, done });
    if (snapshot) log.logger.info({ status: job.status, phase: job.phase }, `resuming ${job.phase ?? job.status} from the stored snapshot`);
    actor.start();
    if (!snapshot) actor.send({ type: 'START' });
  }

  #notify(job: Job | undefined): void {
    if (!job) return;
    this.#options.onChange?.(jobChange(job));
  }
}

const PROGRESS_INTERVAL_MS = 500;

interface JobContext {
  attempt: number;
  retryAt: number | undefined;
  progress: Record<string, number>;
  error: ErrorInfo | undefined;
}

function describe(status: string, phase: string | null): string {
  return phase ? `${status}.${phase}` : status;
}

/** Tags and blobs as they happen; byte-by-byte progress stays out of the log. */
function logEvent(logger: Logger, event: JobEvent): void {
  switch (event.type) {
    case 'tag.copied':
      logger.info({ tag: event.item.target, digest: event.digest, sourceDigest: event.sourceDigest }, `copied ${event.item.target}`);
      break;
    case 'tag.unchanged':
      logger.info({ tag: event.item.target, digest: event.digest }, `unchanged ${event.item.target}`);
      break;
    case 'tag.kept':
      logger.info({ tag: event.item.target, digest: event.digest }, `kept ${event.item.target}: it points elsewhere and override is off`);
      break;
    case 'blob.done':
      if (event.how !== 'present') logger.info({ digest: event.digest, size: event.size, how: event.how }, `${event.how} blob ${event.digest}`);
      break;
    case 'tag.deleted':
      logger.info({ reference: event.reference, digest: event.digest }, `deleted ${event.reference}`);
      break;
    default:
      break;
  }
}

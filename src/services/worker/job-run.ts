import type { Logger } from 'pino';
import type { AnyActor, InspectionEvent, Snapshot } from 'xstate';
import { deletionMachine, type DeletionInput } from '../../machines/deletion.js';
import { replicationMachine, type ReplicationInput } from '../../machines/replication.js';
import { jobPhase, jobStatus, statePath, type JobStatus } from '../../machines/status.js';
import type { JobObserver } from '../inspector/hub.js';
import { createDeletion, createReplication, type Environment, type JobEvent, type RunOptions } from '../interpreter.js';
import { jobLogger, type JobLogger } from '../job-logger.js';
import type { ErrorInfo } from '../registry/errors.js';
import type { ClaimedJob, Job, Lease, Signals, StoredSnapshot, JobStore } from '../store/types.js';
import { describeLeftOut } from '../tag-selection.js';
import type { Metrics } from '../metrics.js';
import { LiveProgress } from './live-progress.js';
import { StepRecorder } from './step-recorder.js';

export interface JobRunOptions {
  jobs: JobStore;
  signals: Signals;
  environment: Environment;
  /** Watches the job's actor (the console's live view). */
  observe?: (job: Job) => JobObserver;
  /** Every job actor's inspection stream, as it is (the Stately inspector). */
  inspect?: (event: InspectionEvent) => void;
  metrics?: Metrics;
}

interface JobContext {
  attempt: number;
  retryAt: number | undefined;
  progress: Record<string, number>;
  error: ErrorInfo | undefined;
}

const MACHINES = { copy: replicationMachine, delete: deletionMachine } as const;

/** The version the job's machine definition has now; snapshots carry the one that wrote them. */
export function machineVersion(job: Pick<Job, 'operation'>): number {
  return Number(MACHINES[job.operation].version);
}

/**
 * One claimed job, run as an actor of its machine: each step it takes is recorded under its
 * lease before the next phase starts; a job that was running elsewhere resumes from its
 * last recorded step.
 */
export class JobRun {
  readonly job: Job;
  readonly lease: Lease;
  /** Resolves when the actor has ended, been halted, or lost its lease. */
  readonly done: Promise<void>;
  #actor!: AnyActor;
  readonly #log: JobLogger;
  readonly #recorder: StepRecorder;

  constructor(claimed: ClaimedJob, options: JobRunOptions) {
    const { job, lease } = claimed;
    this.job = job;
    this.lease = lease;
    const { jobs, signals, environment } = options;
    const observer = options.observe?.(job);
    const log = jobLogger(jobs, environment.logger, { jobId: job.id, executionId: job.executionId, repository: job.destination, node: lease.node }, observer && ((entry) => observer.log(entry)));
    this.#log = log;
    let halted!: () => void;
    const haltedOrLost = new Promise<void>((resolve) => (halted = resolve));
    this.#recorder = new StepRecorder(jobs, lease, {
      logger: log.logger,
      onLost: () => {
        log.logger.warn(`node ${lease.node} no longer holds job ${job.id} (its lease ran out and another node took it over): stopping here`);
        this.#actor.stop();
        halted();
      },
    });

    let last = { status: job.status as string, phase: job.phase };
    const live = new LiveProgress(job.progress);
    const persist = (event: InspectionEvent) => {
      options.inspect?.(event);
      observer?.inspect(event);
      if (event.type !== '@xstate.snapshot') return;
      // The job's own steps, and those of its batches (machines it spawned: their snapshots are part of its own).
      const batch = event.actorRef !== this.#actor;
      if (batch && ((event.actorRef as { _parent?: unknown })._parent !== this.#actor || !('value' in event.snapshot))) return;
      // A batch's end is recorded by the job's own step that counts it; after the job's end, nothing is.
      if (batch && (event.snapshot.status !== 'active' || this.#actor.getSnapshot().status !== 'active')) return;
      const state = (batch ? this.#actor.getSnapshot() : event.snapshot) as Snapshot<unknown> & { value: unknown; context: JobContext };
      // A halted actor must not overwrite the step it is to resume from.
      if (state.status === 'stopped') return;
      const status = jobStatus(state);
      // Before START the machine is in pending, which the store already says.
      if (status === 'pending') return;
      const phase = jobPhase(state) ?? (status === 'retrying' ? last.phase : null);
      const moved = status !== last.status || phase !== last.phase;
      // The job's own snapshot, which follows, records its move with the event that caused it.
      if (batch && moved) return;
      const { context } = state;
      const error = status === 'error' || status === 'retrying' ? (context.error ?? null) : null;
      const snapshot: StoredSnapshot = { version: machineVersion(job), snapshot: this.#actor.getPersistedSnapshot() };
      this.#recorder.record({
        status,
        phase,
        attempt: context.attempt,
        progress: context.progress,
        error,
        snapshot,
        ...(moved ? { transition: { from: statePath(last.status as JobStatus, last.phase), to: statePath(status, phase), event: event.event.type } } : {}),
      });
      if (!moved) return;
      logStep(log.logger, { status, phase, last, context, error, event: event.event.type });
      last = { status, phase };
    };
    const onEvent = (event: JobEvent) => {
      observer?.event(event);
      options.metrics?.jobEvent(event);
      logEvent(log.logger.child({ phase: last.phase }), event);
      const counts = live.counts(event);
      if (counts === undefined) return;
      const { context } = this.#actor.getSnapshot() as { context: JobContext };
      const progress = { ...context.progress, ...counts };
      const change = { jobId: job.id, executionId: job.executionId, status: 'running' as const, phase: last.phase, attempt: context.attempt, progress, error: null, node: lease.node };
      void signals.publish({ type: 'progress', change }).catch(() => {});
    };
    const run: RunOptions = { inspect: persist, onEvent, durable: (signal) => this.#recorder.durable(signal), logger: log.logger };

    let restored = this.#restorable(claimed.snapshot, log.logger);
    this.#actor = this.#create(environment, restored ? { ...run, snapshot: restored } : run);
    // XState does not throw for a snapshot it cannot restore: the actor is created in error.
    const unrestorable = this.#actor.getSnapshot() as { status: string; error?: unknown };
    if (restored && unrestorable.status === 'error') {
      log.logger.warn({ err: unrestorable.error }, `job ${job.id}: its last step cannot be restored (${(unrestorable.error as Error).message}): starting the job over`);
      restored = undefined;
      this.#actor = this.#create(environment, run);
    }
    const ended = new Promise<void>((resolve) => {
      this.#actor.subscribe({
        next: (state: { status: string }) => state.status === 'done' && resolve(),
        complete: resolve,
        error: (error: unknown) => {
          log.logger.error({ err: error }, 'the job machine failed');
          resolve();
        },
      });
    });
    this.done = Promise.race([ended, haltedOrLost]).then(async () => {
      await this.#recorder.durable().catch(() => {});
      await log.flush();
      observer?.done();
    });
    if (claimed.takenOver || restored) {
      log.logger.info({ status: job.status, phase: job.phase, node: lease.node }, `job ${job.id} resumed on node ${lease.node} from its last step (${statePath(job.status, job.phase)})`);
    }
    this.#actor.start();
    if (!restored) this.#actor.send({ type: 'START' });
    if (claimed.stopRequested) this.stop();
  }

  /** Its actor still runs here: it has not ended, been halted or stopped. */
  get active(): boolean {
    return this.#actor.getSnapshot().status === 'active';
  }

  /** STOP: the machine leaves its state, aborting the requests under way. */
  stop(): void {
    if (!this.#recorder.lost) this.#actor.send({ type: 'STOP' });
  }

  /** Halts the actor where it is, without a STOP: its last recorded step is where it resumes. */
  async halt(): Promise<void> {
    this.#actor.stop();
    await this.#recorder.durable().catch(() => {});
    await this.#log.flush();
  }

  /** The stored snapshot if this machine definition can resume it; else the job starts over. */
  #restorable(stored: StoredSnapshot | null, logger: Logger): Snapshot<unknown> | undefined {
    if (stored === null) return undefined;
    const version = machineVersion(this.job);
    if (stored.version === version) return stored.snapshot as Snapshot<unknown>;
    logger.warn(`job ${this.job.id}: its last step was stored by version ${stored.version} of the ${this.job.operation} machine, this is version ${version}: starting the job over (what reached the destination is skipped)`);
    return undefined;
  }

  #create(environment: Environment, run: RunOptions): AnyActor {
    return this.job.operation === 'copy'
      ? createReplication(this.job.input as ReplicationInput, environment, run)
      : createDeletion(this.job.input as DeletionInput, environment, run);
  }
}

function logStep(logger: Logger, step: { status: string; phase: string | null; last: { phase: string | null }; context: JobContext; error: ErrorInfo | null; event: string }): void {
  const { status, phase, context, error } = step;
  if (status === 'retrying') {
    logger.warn({ attempt: context.attempt, retryAt: context.retryAt && new Date(context.retryAt).toISOString(), error }, `retrying ${phase}: ${error?.message}`);
  } else if (status === 'error') {
    logger.error({ error }, `failed in ${step.last.phase}: ${error?.message}`);
  } else {
    logger.info({ status, phase, event: step.event }, phase ? `${status}: ${phase}` : status);
  }
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
    case 'tag.failed':
      logger.error({ tag: event.item.target, sourceDigest: event.sourceDigest, error: event.error }, `failed ${event.item.target}: ${event.error.message}`);
      break;
    case 'tag.refused':
      logger.warn({ tag: event.item.target, sourceDigest: event.sourceDigest, reason: event.reason }, `refused ${event.item.target}: ${event.reason}`);
      break;
    case 'referrer.copied':
      logger.info({ tag: event.item.target, subject: event.subject, digest: event.digest, artifactType: event.artifactType }, `copied referrer ${event.digest} (${event.artifactType ?? 'untyped'}) of ${event.subject}`);
      break;
    case 'blob.done':
      if (event.how !== 'present') logger.info({ digest: event.digest, size: event.size, how: event.how }, `${event.how} blob ${event.digest}`);
      break;
    case 'tag.deleted':
      logger.info({ reference: event.reference, digest: event.digest }, `deleted ${event.reference}`);
      break;
    case 'referrer.deleted':
      logger.info({ subject: event.subject, digest: event.digest, artifactType: event.artifactType, tag: event.tag }, `deleted referrer ${event.tag ?? event.digest} of ${event.subject}`);
      break;
    case 'batch.retrying':
      logger.warn(
        { batch: event.batch, phase: event.phase, attempt: event.attempt, retryAt: new Date(event.retryAt).toISOString(), error: event.error },
        `retrying ${event.phase} of ${event.batch} (attempt ${event.attempt} of ${event.maxAttempts}): ${event.error.message}`,
      );
      break;
    case 'tags.selected': {
      const leftOut = describeLeftOut(event);
      logger.info({ listed: event.listed, kept: event.kept, leftOut: event.leftOut }, `selected ${event.kept.length} of ${event.listed} tags${leftOut ? `; left out ${leftOut}` : ''}`);
      break;
    }
    default:
      break;
  }
}

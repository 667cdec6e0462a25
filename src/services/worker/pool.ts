import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import type { JobObserver } from '../inspector/hub.js';
import type { Environment } from '../interpreter.js';
import type { Id, Job, NodeId, Store } from '../store/types.js';
import { coalesced } from '../coalesced.js';
import type { Metrics } from '../metrics.js';
import { JobRun } from './job-run.js';

export interface WorkerPoolOptions {
  store: Store;
  node: NodeId;
  environment: Environment;
  logger: Logger;
  /** Jobs running (or waiting to retry) at once on this node. */
  workers: number;
  /** How long a claim holds a job without renewal; renewed every third of it. */
  leaseMs: number;
  observe?: (job: Job) => JobObserver;
  inspect?: (event: InspectionEvent) => void;
  metrics?: Metrics;
}

/**
 * A node's workers: claims queued jobs (and jobs whose holder's lease ran out) while a worker
 * is free, runs each as a JobRun, and keeps their leases alive. Woken at once by the `queued`
 * signal; also looks every third of a lease, for leases that ran out and signals it missed.
 */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #runs = new Map<Id, JobRun>();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #unsubscribe: Array<() => void> = [];
  /** Claims while workers are free: one claiming loop at a time, once more for a wake during it. */
  readonly #fill = coalesced(() => this.#claimWhileFree());
  #claiming = true;
  #storeFailing = false;
  /** When the leases were last renewed (this node's clock): past a lease, it holds nothing. */
  #renewedAt = Date.now();

  constructor(options: WorkerPoolOptions) {
    this.#options = options;
  }

  start(): void {
    const { store, leaseMs } = this.#options;
    this.#unsubscribe.push(
      store.signals.subscribe((signal) => {
        if (signal.type === 'queued') this.wake();
        else if (signal.type === 'stop') this.#runs.get(signal.jobId)?.stop();
      }),
      store.signals.onReconnect(() => this.wake()),
    );
    const every = Math.max(50, Math.floor(leaseMs / 3));
    this.#timers.push(
      setInterval(() => void this.#heartbeat(), every),
      setInterval(() => this.wake(), every),
    );
    for (const timer of this.#timers) timer.unref();
    this.wake();
  }

  get running(): number {
    return this.#runs.size;
  }

  /** Takes claimable jobs while workers are free. */
  wake(): void {
    if (this.#claiming) void this.#fill();
  }

  /** STOP for a job this node runs; false when it runs elsewhere or not at all. */
  async stop(id: Id): Promise<boolean> {
    const run = this.#runs.get(id);
    if (!run) return false;
    run.stop();
    await run.done;
    return true;
  }

  /**
   * Stops claiming, halts the jobs where they are (no STOP: their last recorded step is where
   * they resume) and hands them back at once, so that another node resumes them without
   * waiting for their leases to run out.
   */
  async drain(): Promise<void> {
    this.#claiming = false;
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    await this.#fill.settled();
    const runs = [...this.#runs.values()];
    await Promise.all(runs.map((run) => run.halt()));
    await Promise.all(
      runs.map((run) =>
        this.#options.store.jobs.release(run.lease).catch((error: unknown) => this.#options.logger.warn({ err: error, jobId: run.job.id }, `job ${run.job.id} not handed back; its lease runs out instead`)),
      ),
    );
    this.#runs.clear();
    if (runs.length > 0) await this.#handedBack();
  }

  /** Wakes the other nodes to claim what this one handed back (they look on their own only every third of a lease). */
  async #handedBack(): Promise<void> {
    await this.#options.store.signals.publish({ type: 'queued' }).catch((error: unknown) => this.#options.logger.warn({ err: error }, 'jobs handed back but not signalled; the other nodes find them at their next look'));
  }

  async #claimWhileFree(): Promise<void> {
    const { store, node, leaseMs, workers, logger } = this.#options;
    while (this.#claiming && this.#runs.size < workers) {
      let claimed;
      try {
        claimed = await store.jobs.claim(node, leaseMs);
        if (this.#storeFailing) logger.info('the store answers again: claiming jobs');
        this.#storeFailing = false;
      } catch (error) {
        if (!this.#storeFailing) logger.warn({ err: error }, `cannot claim jobs (${(error as Error).message}); trying again`);
        this.#storeFailing = true;
        return;
      }
      if (!claimed) return;
      if (claimed.takenOver) this.#options.metrics?.takeover();
      if (!this.#claiming) {
        await store.jobs.release(claimed.lease).catch(() => {});
        await this.#handedBack();
        return;
      }
      this.#track(new JobRun(claimed, { jobs: store.jobs, signals: store.signals, environment: this.#options.environment, ...this.#watchers() }));
    }
  }

  #watchers() {
    const { observe, inspect, metrics } = this.#options;
    return { ...(observe ? { observe } : {}), ...(inspect ? { inspect } : {}), ...(metrics ? { metrics } : {}) };
  }

  #track(run: JobRun): void {
    this.#runs.set(run.job.id, run);
    void run.done.then(() => {
      if (this.#runs.get(run.job.id) === run) this.#runs.delete(run.job.id);
      this.wake();
    });
  }

  /**
   * Renews the leases of the jobs held here. A job missing from the answer (or held with
   * another fence) was taken over: its actor stops at once. A job the store says this node
   * holds but that no run here has (halted while the store was out of reach) is handed back,
   * to be claimed again. STOP asked through another node is delivered here too, in case its
   * signal was missed. Without a renewal for a whole lease (the store out of reach), this node
   * holds nothing any more and halts every job.
   */
  async #heartbeat(): Promise<void> {
    const { store, node, leaseMs, logger } = this.#options;
    // Only the jobs claimed before the renewal began are in its answer: one claimed meanwhile is not lost.
    const runs = [...this.#runs];
    try {
      await store.nodes.heartbeat(node);
      const held = await store.jobs.renewLeases(node, leaseMs);
      this.#renewedAt = Date.now();
      const renewed = new Map(held.map((job) => [job.jobId, job]));
      for (const [id, run] of runs) {
        // A job that has just ended holds no lease any more; it leaves the runs once its last writes are done.
        if (this.#runs.get(id) !== run || !run.active) continue;
        const lease = renewed.get(id);
        if (!lease || lease.fence !== run.lease.fence) {
          logger.warn({ jobId: id }, `job ${id} is held by another node now: stopping it here`);
          if (this.#runs.get(id) === run) this.#runs.delete(id);
          void run.halt();
        } else if (lease.stopRequested) {
          run.stop();
        }
      }
      for (const orphan of held.filter((job) => !this.#runs.has(job.jobId))) {
        await store.jobs.release({ jobId: orphan.jobId, node, fence: orphan.fence });
      }
      if (held.length > this.#runs.size) this.wake();
    } catch (error) {
      if (Date.now() - this.#renewedAt < leaseMs) return;
      if (this.#runs.size > 0) {
        logger.warn({ err: error }, `leases not renewed for ${leaseMs} ms (${(error as Error).message}): halting job(s) ${[...this.#runs.keys()].join(', ')}, which any node resumes once the store answers`);
      }
      const runs = [...this.#runs.values()];
      this.#runs.clear();
      await Promise.all(runs.map((run) => run.halt()));
    }
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import { ACTIVE_STATUSES, ENDED_STATUSES, isRetryable } from '../../machines/status.js';
import type { Execution, Id, Job, Store } from '../store/types.js';
import type { WorkerPool } from '../worker/pool.js';
import { conflict, found } from './errors.js';

/** How long STOP through one node waits for the node that holds the job to end it. */
const STOP_WAIT_MS = 10_000;
const PAGE_SIZE = 1_000;

/** Every job of an execution, however many pages that takes. */
export async function executionJobs(store: Store, executionId: Id): Promise<Job[]> {
  const jobs: Job[] = [];
  for (;;) {
    const { items, total } = await store.jobs.list({ executionId, limit: PAGE_SIZE, offset: jobs.length });
    jobs.push(...items);
    if (items.length === 0 || jobs.length >= total) return jobs;
  }
}

/**
 * STOP and RETRY, whichever node is asked. A pending job ends at once; a running one held
 * here gets the machine's STOP; one held by another node is asked to stop through the store
 * and a signal, and this waits until it has (or ends it here, when no live node holds it).
 */
export class JobControl {
  readonly #store: Store;
  readonly #pool: WorkerPool;

  constructor(store: Store, pool: WorkerPool) {
    this.#store = store;
    this.#pool = pool;
  }

  async job(id: Id): Promise<Job> {
    return found(await this.#store.jobs.get(id), 'job', id);
  }

  /** The execution, with how many tags of its jobs failed alone (its status stays its jobs'). */
  async execution(id: Id): Promise<Execution & { tagsFailed: number }> {
    const execution = found(await this.#store.executions.get(id), 'execution', id);
    const jobs = await executionJobs(this.#store, id);
    return { ...execution, tagsFailed: jobs.reduce((sum, job) => sum + (job.progress.tagsFailed ?? 0), 0) };
  }

  async stopJob(id: Id): Promise<Job> {
    const job = await this.job(id);
    if (!ACTIVE_STATUSES.has(job.status)) throw conflict(`job ${id} has already ended (${job.status})`);
    if (job.status === 'pending' && (await this.#store.jobs.stopPending(id))) return this.job(id);
    if (await this.#pool.stop(id)) return this.job(id);
    const asked = await this.#store.jobs.requestStop(id);
    if (asked === undefined || ENDED_STATUSES.has(asked.status)) return this.job(id);
    await this.#store.signals.publish({ type: 'stop', jobId: id });
    return this.#ended(id);
  }

  async retryJob(id: Id): Promise<Job> {
    const job = await this.job(id);
    if (!isRetryable(job)) throw conflict(`job ${id} is ${job.status}: only a failed or stopped job, or one with failed tags, can be retried`);
    const requeued = await this.#store.jobs.requeue(id);
    if (!requeued) throw conflict(`job ${id} is no longer failed or stopped`);
    await this.#store.signals.publish({ type: 'queued' });
    return requeued;
  }

  async stopExecution(id: Id): Promise<Execution> {
    const execution = await this.execution(id);
    if (execution.finishedAt !== null) throw conflict(`execution ${id} has already ended (${execution.status})`);
    const jobs = await executionJobs(this.#store, id);
    await Promise.all(jobs.filter((job) => ACTIVE_STATUSES.has(job.status)).map((job) => this.stopJob(job.id).catch(() => undefined)));
    return this.execution(id);
  }

  /** Runs the execution's failed and stopped jobs again. */
  async retryExecution(id: Id): Promise<Execution> {
    await this.execution(id);
    const retryable = (await executionJobs(this.#store, id)).filter(isRetryable);
    if (retryable.length === 0) throw conflict(`execution ${id} has no failed or stopped jobs, nor jobs with failed tags`);
    for (const job of retryable) await this.#store.jobs.requeue(job.id);
    await this.#store.signals.publish({ type: 'queued' });
    return this.execution(id);
  }

  /** The job once it has ended, or as it is after STOP_WAIT_MS. */
  async #ended(id: Id): Promise<Job> {
    const deadline = Date.now() + STOP_WAIT_MS;
    for (;;) {
      const job = await this.job(id);
      if (ENDED_STATUSES.has(job.status) || Date.now() > deadline) return job;
      await sleep(25);
    }
  }
}

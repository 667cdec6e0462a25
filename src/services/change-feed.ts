import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { coalesced } from './coalesced.js';
import type { Id, Job, JobChange, StoredJobChange, Store } from './store/types.js';

/** A change as live views receive it: numbered when stored; live bytes are not. */
export type FeedChange = JobChange & { seq?: number };

/**
 * Every job change on every node, in order: the store's numbered feed, read again whenever a
 * node signals that it wrote to it (and after the signal connection comes back), plus live
 * bytes, which are signalled but never stored.
 */
export class ChangeFeed {
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #emitter = new EventEmitter<{ change: [FeedChange] }>();
  readonly #unsubscribe: Array<() => void> = [];
  /** The newest live counts of each running job, since its last stored step. */
  readonly #live = new Map<Id, JobChange>();
  #seq = 0;
  /** Reads what came after `#seq`: one read at a time, one more for signals during a read. */
  readonly #catchUp = coalesced(() => this.#read());

  private constructor(store: Store, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
    this.#emitter.setMaxListeners(0);
  }

  static async start(store: Store, logger: Logger): Promise<ChangeFeed> {
    const feed = new ChangeFeed(store, logger);
    feed.#seq = await store.jobs.lastChange();
    feed.#unsubscribe.push(
      store.signals.subscribe((signal) => {
        if (signal.type === 'changed') void feed.#catchUp();
        else if (signal.type === 'progress') {
          feed.#live.set(signal.change.jobId, signal.change);
          feed.#emitter.emit('change', signal.change);
        }
      }),
      store.signals.onReconnect(() => void feed.#catchUp()),
    );
    return feed;
  }

  /** The number of the newest change this node has passed on. */
  get seq(): number {
    return this.#seq;
  }

  /** Live views following the feed now. */
  get subscribers(): number {
    return this.#emitter.listenerCount('change');
  }

  subscribe(listener: (change: FeedChange) => void): () => void {
    this.#emitter.on('change', listener);
    return () => this.#emitter.off('change', listener);
  }

  /**
   * The job with the counts it has reached since its last stored step, as the live feed showed
   * them: a stored job says what its last step counted, which for a long transfer is minutes old.
   */
  live(job: Job): Job {
    const change = this.#live.get(job.id);
    if (!change) return job;
    if (job.status !== 'running') {
      this.#live.delete(job.id);
      return job;
    }
    if (change.attempt !== job.attempt) return job;
    return { ...job, progress: change.progress };
  }

  /** Stored changes after `seq`, for a client that resumes (`Last-Event-ID`). */
  since(seq: number): Promise<StoredJobChange[]> {
    return this.#store.jobs.changesSince(seq);
  }

  close(): void {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
  }

  async #read(): Promise<void> {
    try {
      for (;;) {
        const changes = await this.#store.jobs.changesSince(this.#seq);
        for (const change of changes) {
          this.#seq = change.seq;
          // A stored step counts everything before it; live counts start again from it.
          this.#live.delete(change.jobId);
          this.#emitter.emit('change', change);
        }
        if (changes.length === 0) return;
      }
    } catch (error) {
      this.#logger.warn({ err: error }, `job changes not read (${(error as Error).message}); read at the next signal`);
    }
  }
}

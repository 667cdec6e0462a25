import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { LeaseLostError } from '../store/errors.js';
import type { JobStep, JobStore, Lease } from '../store/types.js';

const RETRY_MS = 1_000;

/**
 * Writes a job's steps to the store in order, under the job's lease, and tells the phases
 * when what they follow is durable (the persistence barrier). A write that fails for any
 * reason but a lost lease (the database restarting, a network cut) is tried again until it
 * goes through: the job waits rather than fails, and resumes where it was. A lost lease ends
 * the recording: `onLost` is called and nothing more is written.
 */
export class StepRecorder {
  readonly #store: JobStore;
  readonly #lease: Lease;
  readonly #logger: Logger;
  readonly #onLost: () => void;
  readonly #queue: JobStep[] = [];
  #writing: Promise<void> | undefined;
  #lost: LeaseLostError | undefined;

  constructor(store: JobStore, lease: Lease, options: { logger: Logger; onLost: () => void }) {
    this.#store = store;
    this.#lease = lease;
    this.#logger = options.logger;
    this.#onLost = options.onLost;
  }

  get lost(): boolean {
    return this.#lost !== undefined;
  }

  record(step: JobStep): void {
    if (this.#lost) return;
    // A step that moved nowhere (new progress, a new snapshot) is superseded by the next one.
    const last = this.#queue.at(-1);
    if (last && last.transition === undefined && this.#queue.length > 1) this.#queue.pop();
    this.#queue.push(step);
    this.#write();
  }

  /** Resolves once every step recorded so far is written; rejects if the lease was lost. */
  async durable(signal?: AbortSignal): Promise<void> {
    while (this.#writing) {
      signal?.throwIfAborted();
      await this.#writing;
    }
    if (this.#lost) throw this.#lost;
  }

  /**
   * Starts writing unless a writer runs. A step recorded after the writer's last look at the
   * queue, but before it ended, is picked up by the next writer started here.
   */
  #write(): void {
    if (this.#writing) return;
    this.#writing = this.#drain().finally(() => {
      this.#writing = undefined;
      if (this.#queue.length > 0 && !this.#lost) this.#write();
    });
  }

  async #drain(): Promise<void> {
    let failing = false;
    while (this.#queue.length > 0 && !this.#lost) {
      const step = this.#queue[0]!;
      try {
        await this.#store.saveStep(this.#lease, step);
        this.#queue.shift();
        if (failing) this.#logger.info('the store is back: steps are written again');
        failing = false;
      } catch (error) {
        if (error instanceof LeaseLostError) {
          this.#lost = error;
          this.#queue.length = 0;
          this.#onLost();
          return;
        }
        if (!failing) this.#logger.warn({ err: error }, `a step could not be stored (${(error as Error).message}); the job waits and tries again`);
        failing = true;
        await sleep(RETRY_MS);
      }
    }
  }
}

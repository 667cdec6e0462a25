/**
 * Work of a phase that may outlive it: a transfer aborted by STOP unwinds after the job has
 * ended, cancelling its upload session on the way out. Whoever closes the registry clients or
 * exits the process waits for it first, so that no session is left open on the destination.
 */
export class Cleanups {
  readonly #pending = new Set<Promise<unknown>>();

  /** `work`, kept pending until it settles. */
  async track<T>(work: Promise<T>): Promise<T> {
    this.#pending.add(work);
    try {
      return await work;
    } finally {
      this.#pending.delete(work);
    }
  }

  /** Resolves once all the work tracked has settled, or after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.allSettled(this.#pending), timeout]);
    clearTimeout(timer);
  }
}

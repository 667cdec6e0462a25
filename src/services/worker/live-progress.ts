import type { JobEvent } from '../interpreter.js';

const INTERVAL_MS = 500;

/**
 * Live bytes of a transferring job for list views: what its last step counted plus the blobs
 * in flight, at most every INTERVAL_MS. Not stored: the next step stores the real count.
 */
export class LiveProgress {
  readonly #inflight = new Map<string, number>();
  #reported = 0;

  /** The job left transferBlob: its blobs are counted in its progress now. */
  reset(): void {
    this.#inflight.clear();
  }

  /** The bytes in flight after `event`, when it is time to say so. */
  bytesInFlight(event: JobEvent, now = Date.now()): number | undefined {
    if (event.type === 'blob.progress') this.#inflight.set(event.digest, event.bytes);
    else if (event.type === 'blob.done') this.#inflight.set(event.digest, event.how === 'copied' ? event.size : 0);
    else return undefined;
    if (now - this.#reported < INTERVAL_MS) return undefined;
    this.#reported = now;
    return [...this.#inflight.values()].reduce((sum, bytes) => sum + bytes, 0);
  }
}

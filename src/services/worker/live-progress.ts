import type { JobEvent } from '../interpreter.js';

const INTERVAL_MS = 500;

export interface LiveCounts {
  bytesCopied: number;
  blobsCopied: number;
  blobsMounted: number;
}

/**
 * Live blob counts of a job for list views, at most every INTERVAL_MS: what its stored
 * progress said when this node took it, plus every blob logged as copied or mounted since,
 * plus the bytes of the blobs in flight. The job's batches add the same blobs to its stored
 * progress as each batch ends, so the two agree once nothing is in flight.
 */
export class LiveProgress {
  readonly #done: LiveCounts;
  readonly #inFlight = new Map<string, number>();
  #reported = 0;

  constructor(stored: Record<string, number>) {
    this.#done = { bytesCopied: stored.bytesCopied ?? 0, blobsCopied: stored.blobsCopied ?? 0, blobsMounted: stored.blobsMounted ?? 0 };
  }

  /** The counts after `event`, when it is time to say so. */
  counts(event: JobEvent, now = Date.now()): LiveCounts | undefined {
    if (event.type === 'blob.progress') this.#inFlight.set(event.digest, event.bytes);
    else if (event.type === 'blob.done') this.#finish(event.digest, event.size, event.how);
    else return undefined;
    if (now - this.#reported < INTERVAL_MS && event.type === 'blob.progress') return undefined;
    this.#reported = now;
    let inFlight = 0;
    for (const bytes of this.#inFlight.values()) inFlight += bytes;
    return { ...this.#done, bytesCopied: this.#done.bytesCopied + inFlight };
  }

  #finish(digest: string, size: number, how: 'copied' | 'mounted' | 'present' | 'failed'): void {
    this.#inFlight.delete(digest);
    if (how === 'copied') {
      this.#done.blobsCopied += 1;
      this.#done.bytesCopied += size;
    } else if (how === 'mounted') this.#done.blobsMounted += 1;
  }
}

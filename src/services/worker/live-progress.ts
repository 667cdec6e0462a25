import type { JobEvent } from '../interpreter.js';

const INTERVAL_MS = 500;

export interface LiveCounts {
  bytesCopied: number;
  blobsCopied: number;
  blobsMounted: number;
}

/**
 * Live counts of a transferring job for list views: the bytes and blobs of the blobs in flight
 * or done since its last step, to add to what that step counted, at most every INTERVAL_MS.
 * Not stored: the next step stores the real count, which is the same.
 */
export class LiveProgress {
  readonly #blobs = new Map<string, { bytes: number; how?: 'copied' | 'mounted' }>();
  #reported = 0;

  /** The job left transferBlob: its blobs are counted in its progress now. */
  reset(): void {
    this.#blobs.clear();
  }

  /** The counts after `event`, when it is time to say so. */
  counts(event: JobEvent, now = Date.now()): LiveCounts | undefined {
    if (event.type === 'blob.progress') this.#blobs.set(event.digest, { bytes: event.bytes });
    else if (event.type === 'blob.done') this.#done(event.digest, event.size, event.how);
    else return undefined;
    if (now - this.#reported < INTERVAL_MS && event.type === 'blob.progress') return undefined;
    this.#reported = now;
    const counts: LiveCounts = { bytesCopied: 0, blobsCopied: 0, blobsMounted: 0 };
    for (const blob of this.#blobs.values()) {
      counts.bytesCopied += blob.bytes;
      if (blob.how === 'copied') counts.blobsCopied += 1;
      if (blob.how === 'mounted') counts.blobsMounted += 1;
    }
    return counts;
  }

  #done(digest: string, size: number, how: 'copied' | 'mounted' | 'present' | 'failed'): void {
    // A retried transfer finds the blobs its failed attempt moved present: they still count.
    if (how === 'present' && this.#blobs.get(digest)?.how) return;
    this.#blobs.set(digest, how === 'copied' ? { bytes: size, how } : how === 'mounted' ? { bytes: 0, how } : { bytes: 0 });
  }
}

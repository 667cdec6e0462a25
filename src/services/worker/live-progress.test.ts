import { describe, expect, it } from 'vitest';
import { LiveProgress } from './live-progress.js';

const done = (digest: string, how: 'copied' | 'mounted' | 'present' | 'failed', size = 100) => ({ type: 'blob.done' as const, digest, size, how });

describe('LiveProgress', () => {
  it('counts from the stored progress each blob as it is done, and a blob a failed attempt moved once', () => {
    const live = new LiveProgress({ blobsCopied: 2, bytesCopied: 1_000, tagsCopied: 5 });
    expect(live.counts({ type: 'blob.progress', digest: 'a', size: 100, bytes: 40 }, 1_000)).toEqual({ bytesCopied: 1_040, blobsCopied: 2, blobsMounted: 0 });
    // Within the interval, bytes wait; a blob done does not.
    expect(live.counts({ type: 'blob.progress', digest: 'a', size: 100, bytes: 60 }, 1_100)).toBeUndefined();
    expect(live.counts(done('a', 'copied'), 1_200)).toEqual({ bytesCopied: 1_100, blobsCopied: 3, blobsMounted: 0 });
    expect(live.counts(done('b', 'mounted'), 1_300)).toEqual({ bytesCopied: 1_100, blobsCopied: 3, blobsMounted: 1 });
    // The retry of a failed attempt finds what it moved present: already counted.
    expect(live.counts(done('a', 'present'), 2_000)).toEqual({ bytesCopied: 1_100, blobsCopied: 3, blobsMounted: 1 });
    expect(live.counts({ type: 'blob.progress', digest: 'd', size: 100, bytes: 70 }, 3_000)).toEqual({ bytesCopied: 1_170, blobsCopied: 3, blobsMounted: 1 });
    expect(live.counts(done('d', 'failed'), 3_100)).toEqual({ bytesCopied: 1_100, blobsCopied: 3, blobsMounted: 1 });
  });
});

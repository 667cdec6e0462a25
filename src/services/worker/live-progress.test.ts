import { describe, expect, it } from 'vitest';
import { LiveProgress } from './live-progress.js';

const done = (digest: string, how: 'copied' | 'mounted' | 'present' | 'failed', size = 100) => ({ type: 'blob.done' as const, digest, size, how });

describe('LiveProgress', () => {
  it('counts each blob as it is done, and keeps a blob a failed attempt moved when the retry finds it present', () => {
    const live = new LiveProgress();
    expect(live.counts({ type: 'blob.progress', digest: 'a', size: 100, bytes: 40 }, 1_000)).toEqual({ bytesCopied: 40, blobsCopied: 0, blobsMounted: 0 });
    // Within the interval, bytes wait; a blob done does not.
    expect(live.counts({ type: 'blob.progress', digest: 'a', size: 100, bytes: 60 }, 1_100)).toBeUndefined();
    expect(live.counts(done('a', 'copied'), 1_200)).toEqual({ bytesCopied: 100, blobsCopied: 1, blobsMounted: 0 });
    expect(live.counts(done('b', 'mounted'), 1_300)).toEqual({ bytesCopied: 100, blobsCopied: 1, blobsMounted: 1 });
    expect(live.counts(done('a', 'present'), 2_000)).toEqual({ bytesCopied: 100, blobsCopied: 1, blobsMounted: 1 });
    expect(live.counts(done('c', 'present'), 3_000)).toEqual({ bytesCopied: 100, blobsCopied: 1, blobsMounted: 1 });
    live.reset();
    expect(live.counts(done('d', 'failed'), 4_000)).toEqual({ bytesCopied: 0, blobsCopied: 0, blobsMounted: 0 });
  });
});

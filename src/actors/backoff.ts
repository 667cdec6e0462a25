import { setTimeout as sleep } from 'node:timers/promises';
import { fromPromise } from 'xstate';

export interface BackoffInput {
  /** Epoch milliseconds: an absolute deadline, so a restored job waits only what is left. */
  until: number;
}

export const waitForBackoff = () =>
  fromPromise<void, BackoffInput>(async ({ input, signal }) => {
    const remaining = input.until - Date.now();
    if (remaining > 0) await sleep(remaining, undefined, { signal });
  });

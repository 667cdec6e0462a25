import { setTimeout as sleep } from 'node:timers/promises';
import type { JobRuntime } from '../services/job-runtime.js';
import { phase } from './phase.js';

export interface BackoffInput {
  /** Epoch milliseconds: an absolute deadline, so a restored job waits only what is left. */
  until: number;
}

export const waitForBackoff = (runtime: Pick<JobRuntime, 'durable'>) =>
  phase<void, BackoffInput>(runtime, async ({ input, signal }) => {
    const remaining = input.until - Date.now();
    if (remaining > 0) await sleep(remaining, undefined, { signal });
  });

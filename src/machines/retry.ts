import { toErrorInfo, type ErrorInfo } from '../services/registry/errors.js';

export interface RetryPolicy {
  /** Consecutive transient failures (no phase finishing in between) before the job fails. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 1_000, maxDelayMs: 60_000 };

/**
 * Exponential backoff with equal jitter (half fixed, half random), never shorter than the
 * registry's Retry-After.
 */
export function retryDelay(policy: RetryPolicy, attempt: number, error: ErrorInfo, random = Math.random()): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.max(ceiling / 2 + (random * ceiling) / 2, (error.retryAfterSeconds ?? 0) * 1000);
}

/** What both job machines keep about failures. */
export interface RetryContext {
  job: { retry: RetryPolicy };
  /** Consecutive transient failures; a phase that finishes resets it. */
  attempt: number;
  /** Epoch ms when the retry wait ends: kept in context so a restored job waits what is left. */
  retryAt: number | undefined;
  error: ErrorInfo | undefined;
}

type RetryUpdate = Partial<Omit<RetryContext, 'job'>>;

export function canRetry({ job, attempt }: RetryContext, error: ErrorInfo): boolean {
  return error.transient && attempt < job.retry.maxAttempts;
}

export function scheduleRetry({ job, attempt }: RetryContext, error: ErrorInfo): RetryUpdate {
  return { attempt: attempt + 1, retryAt: Date.now() + retryDelay(job.retry, attempt + 1, error), error };
}

export function fail({ attempt }: RetryContext, error: ErrorInfo): RetryUpdate {
  const message = error.transient ? `gave up after ${attempt + 1} attempts: ${error.message}` : error.message;
  return { error: { ...error, message }, retryAt: undefined };
}

/** The `retrying` status of a job: waits for the deadline, then resumes the phase that failed. */
export const retrying = {
  invoke: {
    id: 'backoff',
    src: 'waitForBackoff',
    input: ({ context }: { context: RetryContext }) => ({ until: context.retryAt ?? Date.now() }),
    onDone: 'running.resume',
  },
} as const;

const errorInfo = ({ event }: { event: { error: unknown } }) => toErrorInfo(event.error);

/**
 * Every phase of a job fails the same way: a transient error waits in `retrying` and resumes
 * the phase, anything else (or too many attempts) ends the job in `error`. The machine
 * provides the guard `canRetry` and the actions `scheduleRetry` and `fail`.
 */
export function phaseFailedIn<Id extends string>(machineId: Id) {
  return [
    {
      guard: { type: 'canRetry', params: errorInfo },
      target: `#${machineId}.retrying`,
      actions: { type: 'scheduleRetry', params: errorInfo },
    },
    { target: `#${machineId}.error`, actions: { type: 'fail', params: errorInfo } },
  ] as const;
}

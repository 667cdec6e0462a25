import type { IncomingHttpHeaders } from 'node:http';

/**
 * What a registry says of its pull budget. Docker Hub sends `RateLimit-Limit: 100;w=21600` and
 * `RateLimit-Remaining: 76;w=21600` on manifest GETs and HEADs, counting only GETs
 * (https://docs.docker.com/docker-hub/usage/pulls/); the IETF drafts' `RateLimit-Reset` (seconds,
 * https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/) is read when sent.
 */
export interface RateLimitFacts {
  limit: number;
  remaining: number;
  /** The `w=` parameter: the length of the window the limit is counted over. */
  windowSeconds: number | null;
  /** When the registry frees its budget, if it says. */
  resetSeconds: number | null;
}

type Headers = IncomingHttpHeaders | Record<string, string | string[] | undefined>;

function first(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `76;w=21600` -> 76 and 21600; a list (`76, 10;w=60`) counts by its first policy. */
function quota(value: string | undefined): { count: number; window: number | null } | undefined {
  const match = value === undefined ? null : /^\s*(\d+)\s*(?:;(.*?))?\s*(?:,|$)/.exec(value);
  if (!match) return undefined;
  const window = /(?:^|;)\s*w\s*=\s*(\d+)/.exec(match[2] ?? '');
  return { count: Number(match[1]), window: window ? Number(window[1]) : null };
}

/** Seconds no window lasts: a RateLimit-Reset past it is a Unix time, as GitLab sends it. */
const EPOCH_SECONDS = 1_000_000_000;

/** Undefined when the answer carries no budget (most registries), or one that cannot be read. */
export function rateLimitFacts(headers: Headers, now = Date.now()): RateLimitFacts | undefined {
  const limit = quota(first(headers, 'ratelimit-limit'));
  const remaining = quota(first(headers, 'ratelimit-remaining'));
  if (!limit || !remaining) return undefined;
  const reset = first(headers, 'ratelimit-reset')?.trim();
  const seconds = reset !== undefined && /^\d+$/.test(reset) ? Number(reset) : null;
  return {
    limit: limit.count,
    remaining: Math.min(remaining.count, limit.count),
    windowSeconds: limit.window ?? remaining.window,
    resetSeconds: seconds !== null && seconds >= EPOCH_SECONDS ? Math.max(0, Math.ceil(seconds - now / 1000)) : seconds,
  };
}

/** Retry-After is seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

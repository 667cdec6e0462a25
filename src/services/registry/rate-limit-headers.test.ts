import { describe, expect, it } from 'vitest';
import { parseRetryAfter, rateLimitFacts } from './rate-limit-headers.js';

describe('rateLimitFacts', () => {
  it("reads Docker Hub's headers: count and window", () => {
    expect(rateLimitFacts({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600' })).toEqual({ limit: 100, remaining: 76, windowSeconds: 21600, resetSeconds: null });
  });

  it("reads the IETF draft's headers, the window from either, and RateLimit-Reset", () => {
    expect(rateLimitFacts({ 'ratelimit-limit': '10', 'ratelimit-remaining': '0; w=60', 'ratelimit-reset': '42' })).toEqual({ limit: 10, remaining: 0, windowSeconds: 60, resetSeconds: 42 });
  });

  it('counts by the first policy of a list, and never more remaining than the limit', () => {
    expect(rateLimitFacts({ 'ratelimit-limit': '5;w=1, 100;w=3600', 'ratelimit-remaining': '9' })).toEqual({ limit: 5, remaining: 5, windowSeconds: 1, resetSeconds: null });
  });

  it.each([
    ['no headers', {}],
    ['a limit alone', { 'ratelimit-limit': '100;w=21600' }],
    ['a remaining alone', { 'ratelimit-remaining': '3' }],
    ['words', { 'ratelimit-limit': 'lots', 'ratelimit-remaining': 'some' }],
  ])('is undefined for %s', (_, headers) => {
    expect(rateLimitFacts(headers)).toBeUndefined();
  });

  it('reads a RateLimit-Reset that is a Unix time (GitLab) as the seconds until then', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(rateLimitFacts({ 'ratelimit-limit': '600', 'ratelimit-remaining': '0', 'ratelimit-reset': String(now / 1000 + 45) }, now)?.resetSeconds).toBe(45);
  });

  it('ignores a RateLimit-Reset that is not seconds', () => {
    expect(rateLimitFacts({ 'ratelimit-limit': '1', 'ratelimit-remaining': '1', 'ratelimit-reset': 'soon' })?.resetSeconds).toBeNull();
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds, and an HTTP date as the seconds until then', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter(' 7 ', now)).toBe(7);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('tomorrow', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

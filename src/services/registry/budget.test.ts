import { describe, expect, it } from 'vitest';
import { budgetView, decreased, DEFAULT_PAUSE_MS, increased, INITIAL_BUDGET, learnPulls, MAX_RATE, MIN_RATE, PROBE_MS, refused, takePulls, type BudgetState } from './budget.js';
import type { RateLimitFacts } from './rate-limit-headers.js';

/** The budget math on an injected clock: what a real registry adds to it is in test/pull-budget.test.ts. */

const T = 1_000_000;
const hub = (remaining: number, windowSeconds: number | null = 10, resetSeconds: number | null = null): RateLimitFacts => ({ limit: 8, remaining, windowSeconds, resetSeconds });
const pulled = (state: BudgetState, facts: RateLimitFacts | undefined, now: number) => learnPulls(state, { facts, pull: true, ok: true }, now);

describe('pulls', () => {
  it('sends one probe while nothing is known, and the others wait for its answer (or its timeout)', () => {
    const [probing, first] = takePulls(INITIAL_BUDGET, 5, T);
    expect(first).toEqual({ taken: 1, waitMs: PROBE_MS });
    expect(takePulls(probing, 4, T + 10)[1]).toEqual({ taken: 0, waitMs: PROBE_MS - 10 });
    // A probe whose node died is given up.
    expect(takePulls(probing, 4, T + PROBE_MS)[1]).toEqual({ taken: 1, waitMs: PROBE_MS });
  });

  it('takes what the registry says is left, then waits for the window to end', () => {
    const counted = pulled(takePulls(INITIAL_BUDGET, 1, T)[0], hub(3), T + 100);
    expect(counted).toMatchObject({ pulls: 'counted', limit: 8, remaining: 3, resetAt: T + 100 + 10_000, probeUntil: null });
    const [empty, grant] = takePulls(counted, 5, T + 200);
    expect(grant).toEqual({ taken: 3, waitMs: 10_000 - 100 });
    expect(takePulls(empty, 2, T + 5_000)[1]).toEqual({ taken: 0, waitMs: 5_100 });
    // Past the window: what is left is found out anew, by one probe.
    const [fresh, again] = takePulls(empty, 2, T + 10_100);
    expect(again).toEqual({ taken: 1, waitMs: PROBE_MS });
    expect(fresh).toMatchObject({ pulls: 'unknown', remaining: null, probeUntil: T + 10_100 + PROBE_MS });
  });

  it('keeps the lower count within a window: pulls taken may not have reached the registry yet', () => {
    const counted = pulled(INITIAL_BUDGET, hub(6), T);
    const [taken] = takePulls(counted, 4, T);
    expect(pulled(taken, hub(5), T + 50).remaining).toBe(2);
    // Someone else pulling from the same address: the registry's lower count wins.
    expect(pulled(taken, hub(1), T + 50)).toMatchObject({ remaining: 1, resetAt: T + 10_000 });
  });

  it("takes the registry's RateLimit-Reset over the window", () => {
    expect(pulled(INITIAL_BUDGET, hub(2, 3600, 30), T).resetAt).toBe(T + 30_000);
  });

  it('lets pulls go when no window says when they free up: the 429 will', () => {
    const [, grant] = takePulls(pulled(INITIAL_BUDGET, hub(0, null), T), 3, T);
    expect(grant).toEqual({ taken: 3, waitMs: 0 });
  });

  it('stops counting for a registry whose manifests come without a budget', () => {
    const none = pulled(takePulls(INITIAL_BUDGET, 1, T)[0], undefined, T);
    expect(none.pulls).toBe('none');
    expect(takePulls(none, 50, T)[1]).toEqual({ taken: 50, waitMs: 0 });
    // A 404 or a 401 says nothing: the probe ends, and the next pull asks.
    const ended = learnPulls(takePulls(INITIAL_BUDGET, 1, T)[0], { facts: undefined, pull: true, ok: false }, T);
    expect(ended).toMatchObject({ pulls: 'unknown', probeUntil: null });
  });

  it('learns from HEADs too, which Docker Hub answers with the budget without counting them', () => {
    expect(learnPulls(INITIAL_BUDGET, { facts: hub(7), pull: false, ok: true }, T)).toMatchObject({ pulls: 'counted', remaining: 7 });
    expect(learnPulls(INITIAL_BUDGET, { facts: undefined, pull: false, ok: true }, T)).toBe(INITIAL_BUDGET);
  });
});

describe('429', () => {
  it("pauses everyone for the registry's Retry-After, keeping the later of two pauses", () => {
    const paused = refused(INITIAL_BUDGET, { pauseMs: 5_000, rate: null, answer: { facts: undefined, pull: false, ok: false } }, T);
    expect(budgetView(paused, T + 1_000).pausedMs).toBe(4_000);
    const shorter = refused(paused, { pauseMs: DEFAULT_PAUSE_MS, rate: null, answer: { facts: undefined, pull: false, ok: false } }, T + 1_000);
    expect(shorter.pausedUntil).toBe(T + 5_000);
  });

  it('shares the slow-down it caused, grown for readers as its node grows its own', () => {
    const slowed = refused(INITIAL_BUDGET, { pauseMs: 1_000, rate: 4, answer: { facts: undefined, pull: false, ok: false } }, T);
    expect(slowed).toMatchObject({ rate: 4, decreasedAt: T });
    expect(budgetView(slowed, T + 3_000).rate).toBe(7);
    expect(budgetView(slowed, T + MAX_RATE * 1_000).rate).toBeNull();
  });

  it('holds the empty budget until the registry says to come back', () => {
    const empty = refused(INITIAL_BUDGET, { pauseMs: 20_000, rate: null, answer: { facts: hub(0, 10), pull: true, ok: false } }, T);
    expect(empty).toMatchObject({ pulls: 'counted', remaining: 0, resetAt: T + 20_000, pausedUntil: T + 20_000 });
  });
});

describe('AIMD', () => {
  it('halves the rate on a 429, down to a floor', () => {
    expect(decreased(40)).toBe(20);
    expect(decreased(MIN_RATE)).toBe(MIN_RATE);
  });

  it('adds a request per second for each second of answers, counting at most a second per answer', () => {
    expect(increased(10, 500)).toBe(10.5);
    expect(increased(10, 3_600_000)).toBe(11);
    expect(increased(MAX_RATE - 0.5, 1_000)).toBeNull();
  });
});

import type { RateLimitFacts } from './rate-limit-headers.js';

/**
 * A registry's budget as every job (and, through the store, every node) shares it: the pause
 * a 429 asked for, the slow-down it caused, and the pulls the registry says are left. Pure
 * functions of the state and the ledger's clock (epoch ms): the ledger applies them atomically,
 * in memory or to a database row.
 */
export interface BudgetState {
  /** Requests per second allowed after the last 429, as of `decreasedAt`; null: no slow-down. */
  rate: number | null;
  decreasedAt: number | null;
  /** Nobody sends before this (the registry's Retry-After). */
  pausedUntil: number | null;
  /**
   * unknown: nothing learnt yet, so one pull at a time goes to find out (a probe); none: the
   * registry announces no budget; counted: it does.
   */
  pulls: 'unknown' | 'none' | 'counted';
  limit: number | null;
  remaining: number | null;
  windowSeconds: number | null;
  /** When the budget is believed whole again; a probe then asks what is left. */
  resetAt: number | null;
  /** A probe is out until then: a node that died with one out holds the others no longer. */
  probeUntil: number | null;
}

export const INITIAL_BUDGET: BudgetState = {
  rate: null,
  decreasedAt: null,
  pausedUntil: null,
  pulls: 'unknown',
  limit: null,
  remaining: null,
  windowSeconds: null,
  resetAt: null,
  probeUntil: null,
};

/** A probe that neither answers nor fails within this is given up (its node died). */
export const PROBE_MS = 30_000;
/** A 429 without Retry-After pauses this long. */
export const DEFAULT_PAUSE_MS = 1_000;
/** The slow-down never goes below one request every ten seconds. */
export const MIN_RATE = 0.1;
/** Each second of answers without a 429 allows one request per second more. */
export const RATE_STEP = 1;
/** Past this the slow-down is over. */
export const MAX_RATE = 1_000;
const DECREASE = 0.5;

/** What a node asked for and got: pulls it may send now, and how long to wait before asking for the rest. */
export interface PullGrant {
  taken: number;
  waitMs: number;
}

/** The state with a window that has run out forgotten: what is left is found out anew. */
function current(state: BudgetState, now: number): BudgetState {
  if (state.pulls !== 'counted' || state.resetAt === null || now < state.resetAt) return state;
  return { ...state, pulls: 'unknown', remaining: null, resetAt: null, probeUntil: null };
}

/** Takes up to `wanted` manifest GETs from the budget. */
export function takePulls(given: BudgetState, wanted: number, now: number): [BudgetState, PullGrant] {
  const state = current(given, now);
  if (state.pulls === 'none') return [state, { taken: wanted, waitMs: 0 }];
  if (state.pulls === 'counted') {
    const remaining = state.remaining ?? 0;
    const taken = Math.min(wanted, remaining);
    const next = { ...state, remaining: remaining - taken };
    // Without a window nothing says when pulls free up: they go, and a 429's Retry-After says.
    if (state.resetAt === null) return [next, { taken: wanted, waitMs: 0 }];
    return [next, { taken, waitMs: taken < wanted ? state.resetAt - now : 0 }];
  }
  if (state.probeUntil !== null && now < state.probeUntil) return [state, { taken: 0, waitMs: state.probeUntil - now }];
  return [{ ...state, probeUntil: now + PROBE_MS }, { taken: 1, waitMs: wanted > 1 ? PROBE_MS : 0 }];
}

export interface Answer {
  facts: RateLimitFacts | undefined;
  /** It answers a manifest GET. */
  pull: boolean;
  /** 2xx: a manifest GET answered without a budget means the registry counts none. */
  ok: boolean;
}

/** What an answer says of the budget. */
export function learnPulls(given: BudgetState, { facts, pull, ok }: Answer, now: number): BudgetState {
  const state = current(given, now);
  if (!facts) {
    if (state.pulls !== 'unknown' || !pull) return state;
    // An answer that is no manifest (401, 404, a failure) ends the probe without teaching anything.
    return ok ? { ...state, pulls: 'none', probeUntil: null } : { ...state, probeUntil: null };
  }
  const told = facts.resetSeconds !== null ? now + facts.resetSeconds * 1000 : null;
  if (state.pulls !== 'counted') {
    // The window began at the latest now: counting it from here never frees pulls too early.
    const windowEnd = facts.windowSeconds === null ? null : now + facts.windowSeconds * 1000;
    return { ...state, pulls: 'counted', limit: facts.limit, remaining: facts.remaining, windowSeconds: facts.windowSeconds, resetAt: told ?? windowEnd, probeUntil: null };
  }
  // Within the window the lower count wins: pulls taken since may not have reached the registry.
  return { ...state, limit: facts.limit, windowSeconds: facts.windowSeconds, remaining: Math.min(state.remaining ?? facts.remaining, facts.remaining), resetAt: told ?? state.resetAt };
}

export interface Refusal {
  /** The registry's Retry-After, or DEFAULT_PAUSE_MS. */
  pauseMs: number;
  /** The slow-down this 429 caused; null when it caused none (a 429 to a request sent before the last). */
  rate: number | null;
  answer: Answer;
}

/** A 429: everyone pauses; the slow-down and, when the registry says so, the empty budget are shared. */
export function refused(given: BudgetState, { pauseMs, rate, answer }: Refusal, now: number): BudgetState {
  const pausedUntil = Math.max(given.pausedUntil ?? 0, now + pauseMs);
  const learnt = learnPulls({ ...given, pausedUntil, ...(rate === null ? {} : { rate, decreasedAt: now }) }, answer, now);
  // A budget refused as empty is whole again when the registry says to come back.
  return learnt.pulls === 'counted' && learnt.remaining === 0 && answer.facts ? { ...learnt, resetAt: Math.max(learnt.resetAt ?? 0, pausedUntil) } : learnt;
}

/** Multiplicative decrease. */
export function decreased(rate: number): number {
  return Math.max(MIN_RATE, rate * DECREASE);
}

/**
 * Additive increase, for the answers of `elapsedMs` without a 429: at most one second counts
 * per answer, so a registry asked nothing for an hour has not shown it takes more. Null once
 * the slow-down is over.
 */
export function increased(rate: number, elapsedMs: number): number | null {
  const next = rate + (RATE_STEP * Math.min(elapsedMs, 1_000)) / 1_000;
  return next >= MAX_RATE ? null : next;
}

/** What every node knows of the budget now: times as durations from now, so that clocks need not agree. */
export interface BudgetView {
  pausedMs: number;
  /** The shared slow-down, grown since it was decided as its node grows its own. */
  rate: number | null;
  /** Which decrease that is (the ledger's time of it). */
  decreasedAt: number | null;
  pulls: BudgetState['pulls'];
  limit: number | null;
  remaining: number | null;
  windowSeconds: number | null;
  resetMs: number | null;
}

export function budgetView(given: BudgetState, now: number): BudgetView {
  const state = current(given, now);
  const aged = state.rate === null || state.decreasedAt === null ? state.rate : state.rate + (RATE_STEP * (now - state.decreasedAt)) / 1_000;
  return {
    pausedMs: Math.max(0, (state.pausedUntil ?? 0) - now),
    rate: aged === null || aged >= MAX_RATE ? null : aged,
    decreasedAt: state.decreasedAt,
    pulls: state.pulls,
    limit: state.limit,
    remaining: state.remaining,
    windowSeconds: state.windowSeconds,
    resetMs: state.resetAt === null ? null : Math.max(0, state.resetAt - now),
  };
}

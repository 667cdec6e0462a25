import type { IncomingHttpHeaders } from 'node:http';
import { budgetView, decreased, DEFAULT_PAUSE_MS, increased, INITIAL_BUDGET, learnPulls, refused, takePulls, type Answer, type BudgetState, type BudgetView } from './budget.js';
import { RegistryError } from './errors.js';
import { parseRetryAfter, rateLimitFacts, type RateLimitFacts } from './rate-limit-headers.js';

/**
 * Where registries' budgets are kept: in memory for one process, or in the store, where every
 * node on the database shares them.
 */
export interface BudgetLedger {
  /**
   * Applies `change` to the registry's budget atomically, on the ledger's clock (epoch ms).
   * Returning the state it was given changes nothing.
   */
  update<T>(registry: string, change: (state: BudgetState, now: number) => [BudgetState, T]): Promise<T>;
  /** Tells the other nodes that the budget changed in a way they must act on: a pause, a slow-down, a budget learnt. */
  announce(registry: string): void;
}

export function memoryLedger(): BudgetLedger {
  const states = new Map<string, BudgetState>();
  return {
    update: async (registry, change) => {
      const [state, result] = change(states.get(registry) ?? INITIAL_BUDGET, Date.now());
      states.set(registry, state);
      return result;
    },
    announce: () => {},
  };
}

/** A request let through: tell the limiter how the registry answered. */
export interface Pass {
  answered(status: number, headers: IncomingHttpHeaders): void;
  /** No answer came (the connection failed, or the request was aborted). */
  failed(): void;
}

/** A registry's budget as the API shows it, on this node. */
export interface BudgetStatus {
  /** The configured ceiling; null: none. */
  requestsPerSecond: number | null;
  /** What this node sends at most now: the ceiling or the slow-down after 429s, whichever is lower; null: no limit. */
  rate: number | null;
  pausedUntil: string | null;
  /** What the registry said of its pull budget (manifest GETs); null until it says. */
  pulls: { limit: number; remaining: number; windowSeconds: number | null; resetAt: string | null } | null;
  /** Requests of this node waiting for the budget. */
  waiting: number;
}

interface Waiter {
  pull: boolean;
  /** It needs no pull, or has been given one. */
  cleared: boolean;
  release(): void;
}

/** Sends per second are measured over this, for the first slow-down. */
const MEASURE_MS = 1_000;

/**
 * One registry's requests from every job of this process: they wait, in order, for the pause
 * a 429 asked for, for the request rate (the configured one, or the slow-down after 429s:
 * halved on a 429, one request per second more for each second without), and, for manifest
 * GETs, for a pull of the budget the registry announces. What it learns goes to the ledger,
 * where other nodes read it.
 */
export class RegistryLimiter {
  readonly registry: string;
  readonly #ledger: BudgetLedger;
  #configured: number | null = null;
  #rate: number | null = null;
  #grownAt = 0;
  /** When this node last slowed down: a 429 to a request sent before does not slow it again. */
  #slowedAt = -Infinity;
  #adopted: number | null = null;
  #pausedUntil = 0;
  #view: BudgetView | undefined;
  #pullsInHand = 0;
  #pullsBlockedUntil = 0;
  #taking = false;
  #queue: Waiter[] = [];
  #lastRelease = -Infinity;
  readonly #recent: number[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(registry: string, ledger: BudgetLedger) {
    this.registry = registry;
    this.#ledger = ledger;
  }

  /** The ceiling configured for the registry (requests per second; null: none). */
  configure(requestsPerSecond: number | null): void {
    this.#configured = requestsPerSecond;
    this.#pump();
  }

  /** Waits until the budget lets a request go; a manifest GET (`pull`) also takes a pull. */
  admit(pull: boolean, signal: AbortSignal | undefined, what: string): Promise<Pass> {
    const aborted = () => new RegistryError('ABORTED', `${what}: aborted while waiting for the request budget of ${this.registry}`);
    if (signal?.aborted) return Promise.reject(aborted());
    return new Promise<Pass>((resolve, reject) => {
      const onAbort = () => {
        this.#queue = this.#queue.filter((queued) => queued !== waiter);
        if (waiter.pull && waiter.cleared) this.#pullsInHand += 1;
        reject(aborted());
        this.#pump();
      };
      const waiter: Waiter = {
        pull,
        cleared: !pull,
        release: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.#pass(pull));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
      this.#pump();
    });
  }

  /** Adopts what the ledger holds now (another node's pause or slow-down). */
  async refresh(): Promise<void> {
    try {
      this.#adopt(await this.#ledger.update(this.registry, (state, now) => [state, budgetView(state, now)]));
    } catch {
      // The ledger away: this node goes on with what it knows.
    }
    this.#pullsBlockedUntil = 0;
    this.#pump();
  }

  async status(): Promise<BudgetStatus> {
    await this.refresh();
    const now = Date.now();
    const view = this.#view;
    const rate = this.#effectiveRate();
    return {
      requestsPerSecond: this.#configured,
      rate: rate === Infinity ? null : rate,
      pausedUntil: this.#pausedUntil > now ? new Date(this.#pausedUntil).toISOString() : null,
      pulls:
        view?.pulls === 'counted' && view.limit !== null && view.remaining !== null
          ? { limit: view.limit, remaining: view.remaining, windowSeconds: view.windowSeconds, resetAt: view.resetMs === null ? null : new Date(now + view.resetMs).toISOString() }
          : null,
      waiting: this.#queue.length,
    };
  }

  #effectiveRate(): number {
    return Math.min(this.#configured ?? Infinity, this.#rate ?? Infinity);
  }

  /** Lets go whatever the pause, the rate and the pulls in hand allow, and sets a timer for the rest. */
  #pump(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = Date.now();
    let wanted = 0;
    for (const waiter of this.#queue) {
      if (waiter.cleared) continue;
      if (this.#view?.pulls === 'none') waiter.cleared = true;
      else if (this.#pullsInHand > 0) {
        this.#pullsInHand -= 1;
        waiter.cleared = true;
      } else wanted += 1;
    }
    let wake = Infinity;
    if (wanted > 0) {
      if (now < this.#pullsBlockedUntil) wake = this.#pullsBlockedUntil;
      else this.#take(wanted);
    }
    if (now < this.#pausedUntil) wake = Math.min(wake, this.#pausedUntil);
    else {
      const interval = 1_000 / this.#effectiveRate();
      const waiting: Waiter[] = [];
      for (const waiter of this.#queue) {
        if (!waiter.cleared || now < this.#lastRelease + interval) {
          if (waiter.cleared) wake = Math.min(wake, this.#lastRelease + interval);
          waiting.push(waiter);
          continue;
        }
        this.#released(now);
        waiter.release();
      }
      this.#queue = waiting;
    }
    if (wake !== Infinity && this.#queue.length > 0) this.#timer = setTimeout(() => this.#pump(), wake - now);
  }

  /** Asks the ledger for pulls; one request at a time, for every waiter that needs one. */
  #take(wanted: number): void {
    if (this.#taking) return;
    this.#taking = true;
    this.#ledger
      .update(this.registry, (state, now) => {
        const [next, grant] = takePulls(state, wanted, now);
        return [next, { grant, view: budgetView(next, now) }];
      })
      .then(
        ({ grant, view }) => {
          this.#pullsInHand += grant.taken;
          if (grant.waitMs > 0) this.#pullsBlockedUntil = Date.now() + grant.waitMs;
          this.#adopt(view);
        },
        // The ledger away (the database restarting): the registry's own answers are the budget.
        () => void (this.#pullsInHand += wanted),
      )
      .finally(() => {
        this.#taking = false;
        this.#pump();
      });
  }

  /** An answer taught the ledger something: pulls waiting may go, or know how long to wait. */
  #learnt(view: BudgetView): void {
    this.#pullsBlockedUntil = 0;
    this.#adopt(view);
  }

  #adopt(view: BudgetView): void {
    const now = Date.now();
    this.#view = view;
    if (view.pausedMs > 0) this.#pausedUntil = Math.max(this.#pausedUntil, now + view.pausedMs);
    if (view.decreasedAt === null || view.decreasedAt === this.#adopted) return;
    this.#adopted = view.decreasedAt;
    if (view.rate !== null && view.rate < (this.#rate ?? Infinity)) {
      this.#rate = view.rate;
      this.#slowedAt = now;
      this.#grownAt = now;
    }
  }

  #pass(pull: boolean): Pass {
    const sentAt = Date.now();
    let settled = false;
    return {
      answered: (status, headers) => {
        if (settled) return;
        settled = true;
        this.#answered(pull, sentAt, status, headers);
      },
      failed: () => {
        if (settled) return;
        settled = true;
        if (pull && this.#view?.pulls !== 'none' && this.#view?.pulls !== 'counted') this.#learn({ facts: undefined, pull, ok: false });
      },
    };
  }

  #answered(pull: boolean, sentAt: number, status: number, headers: IncomingHttpHeaders): void {
    const facts = rateLimitFacts(headers);
    const answer: Answer = { facts, pull, ok: status >= 200 && status < 300 };
    if (status === 429) return this.#refused(sentAt, headers, answer);
    if (this.#rate !== null && status < 500) {
      const now = Date.now();
      this.#rate = increased(this.#rate, now - this.#grownAt);
      this.#grownAt = now;
    }
    if (this.#mustLearn(pull, facts)) this.#learn(answer);
    this.#pump();
  }

  /** Whether the answer tells the ledger something new; most answers of a known budget do not. */
  #mustLearn(pull: boolean, facts: RateLimitFacts | undefined): boolean {
    const known = this.#view;
    if (!facts) return pull && known?.pulls !== 'none' && known?.pulls !== 'counted';
    return known?.pulls !== 'counted' || known.limit !== facts.limit || facts.remaining < (known.remaining ?? Infinity);
  }

  #learn(answer: Answer): void {
    this.#ledger
      .update(this.registry, (state, now) => {
        const next = learnPulls(state, answer, now);
        return [next, { view: budgetView(next, now), changed: next.pulls !== state.pulls }];
      })
      .then(
        ({ view, changed }) => {
          this.#learnt(view);
          if (changed) this.#ledger.announce(this.registry);
        },
        () => {},
      )
      .finally(() => this.#pump());
  }

  #refused(sentAt: number, headers: IncomingHttpHeaders, answer: Answer): void {
    const now = Date.now();
    const retryAfter = parseRetryAfter(firstHeader(headers['retry-after']));
    const pauseMs = retryAfter === undefined ? DEFAULT_PAUSE_MS : retryAfter * 1000;
    this.#pausedUntil = Math.max(this.#pausedUntil, now + pauseMs);
    // 429s to requests sent before the last slow-down tell nothing new: one decrease per congestion, as TCP does.
    let rate: number | null = null;
    if (sentAt >= this.#slowedAt) {
      rate = decreased(this.#rate ?? this.#measuredRate(now));
      this.#rate = rate;
      this.#slowedAt = now;
      this.#grownAt = now;
    }
    this.#ledger
      .update(this.registry, (state, at) => {
        const next = refused(state, { pauseMs, rate, answer }, at);
        return [next, budgetView(next, at)];
      })
      .then(
        (view) => {
          this.#learnt(view);
          this.#ledger.announce(this.registry);
        },
        () => {},
      )
      .finally(() => this.#pump());
    this.#pump();
  }

  #released(now: number): void {
    this.#lastRelease = now;
    this.#recent.push(now);
    while (this.#recent[0]! < now - MEASURE_MS) this.#recent.shift();
  }

  /** Requests let go over the last second: where the first slow-down starts from. */
  #measuredRate(now: number): number {
    return Math.max(1, (this.#recent.filter((at) => at >= now - MEASURE_MS).length * 1_000) / MEASURE_MS);
  }
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

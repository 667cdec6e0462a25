import pino from 'pino';
import { DEFAULT_RETRY } from '../src/machines/retry.js';
import { BlobLocator } from '../src/services/blob-locator.js';
import type { Environment } from '../src/services/interpreter.js';
import { memoryLedger, type BudgetLedger } from '../src/services/registry/limiter.js';
import { Registries } from '../src/services/registry/registries.js';
import { requestsPerWindow, type BudgetFault, type FaultProxy } from '../test/support/fault-proxy.js';
import { replicate, replicationInput } from '../test/support/ferry.js';
import { verifyCopy } from './copiers.js';
import type { SeededRepository } from './fixtures.js';

/**
 * The 429 scenario of issue 12: JOBS jobs at once, each copying every tag of one repository,
 * from a source that rations manifest GETs as Docker Hub does (LIMIT per window, 429 with
 * Retry-After past it, RateLimit headers on GETs and HEADs), with `ferry copy`'s retry policy.
 * The arms: the jobs share one budget (one environment, as the jobs of ferry serve do); each
 * job has its own (an environment each: every job learns alone); none (no limiter: a 429 fails
 * the phase, whose retry backs off on its own, as before issue 12).
 */
export const BUDGET_SCENARIO = { jobs: 4, limit: 10, windowSeconds: 2 } as const;
export const BUDGET_ARMS = ['shared', 'per job', 'none'] as const;
export type BudgetArm = (typeof BUDGET_ARMS)[number];

const MANIFESTS = /\/manifests\//;

export interface BudgetRound {
  arm: BudgetArm;
  seconds: number;
  /** Every request the source saw, manifest GETs among them, and those it answered 429. */
  requests: number;
  manifestGets: number;
  refused: number;
  /** The most manifest GETs that reached it in one window of its budget. */
  busiestWindow: number;
  finished: number;
}

function environment(ledger: BudgetLedger | null): Environment {
  return {
    registries: new Registries(async (registry) => ({ registry }), { ledger }),
    locator: new BlobLocator(),
    logger: pino({ level: 'silent' }),
  };
}

/** One arm's jobs into `<namespace>/<job>`, against a fresh budget; every finished job's copy is verified. */
export async function runBudgetArm(arm: BudgetArm, proxy: FaultProxy, seeded: SeededRepository, destination: string, namespace: string): Promise<BudgetRound> {
  const budget: BudgetFault = { type: 'budget', limit: BUDGET_SCENARIO.limit, windowSeconds: BUDGET_SCENARIO.windowSeconds, free: ['HEAD'] };
  const removeRule = proxy.addRule({ path: MANIFESTS, fault: budget });
  const from = proxy.requests.length;
  // Shared by every job of the arm, as ferry serve shares its registries: with a ledger, or none.
  const shared = arm === 'per job' ? undefined : environment(arm === 'shared' ? memoryLedger() : null);
  const started = performance.now();
  try {
    const results = await Promise.all(
      Array.from({ length: BUDGET_SCENARIO.jobs }, (_, job) => {
        const input = replicationInput(`${proxy.host}/${seeded.repository}`, `${destination}/${namespace}/${job}`, { retry: DEFAULT_RETRY });
        return replicate(input, shared ?? environment(memoryLedger()));
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const requests = proxy.requests.slice(from);
    const gets = requests.filter((r) => r.method === 'GET' && MANIFESTS.test(r.path));
    const finished = results.flatMap((result, job) => (result.status === 'finished' ? [job] : []));
    for (const job of finished) await verifyCopy(destination, `${namespace}/${job}`, seeded);
    return {
      arm,
      seconds,
      requests: requests.length,
      manifestGets: gets.length,
      refused: requests.filter((r) => r.status === 429).length,
      busiestWindow: Math.max(...requestsPerWindow(requests, MANIFESTS, BUDGET_SCENARIO.windowSeconds, (r) => r.method === 'GET')),
      finished: finished.length,
    };
  } finally {
    removeRule();
  }
}

export function formatBudgetRounds(rounds: BudgetRound[]): string {
  const { jobs, limit, windowSeconds } = BUDGET_SCENARIO;
  const cells = [['arm', 'wall', 'requests seen', 'manifest GETs', '429s', `busiest window (limit ${limit})`, `jobs finished of ${jobs}`]];
  for (const round of rounds.toSorted((a, b) => BUDGET_ARMS.indexOf(a.arm) - BUDGET_ARMS.indexOf(b.arm))) {
    cells.push([round.arm, `${round.seconds.toFixed(2)} s`, String(round.requests), String(round.manifestGets), String(round.refused), String(round.busiestWindow), String(round.finished)]);
  }
  const widths = cells[0]!.map((_, column) => Math.max(...cells.map((line) => line[column]!.length)));
  const table = cells.map((line) => line.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
  return `${jobs} jobs at once against ${limit} manifest GETs per ${windowSeconds} s:\n${table}`;
}

/**
 * ferry against skopeo between two real registries on loopback (issue 6): bulk, many small
 * tags, a no-op re-sync and multi-arch images, each timed alternately over several rounds; plus
 * HTTP requests per tag of a no-op, ferry's peak RSS copying a 1 GiB layer and the machine's
 * ceiling for the bulk blobs. Prints a table and writes it with every round to bench/results/.
 * Also, without a goal: many small tags with every request 10 ms late, as a registry across a
 * network is (on loopback the registries' CPU bounds both tools); and the 429 scenario of issue
 * 12 (bench/budget.ts): jobs against a source that rations manifest GETs, with their budget
 * shared, one each, or none.
 *   npx tsx bench/run.ts [--rounds 3] [--only bulk,small,noop,multiarch,remote,rss,ceiling,budget]
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFaultProxy } from '../test/support/fault-proxy.js';
import { startRegistry } from '../test/support/registry.js';
import { REPLICATION_DEFAULTS } from '../src/machines/replication.js';
import { BUDGET_ARMS, formatBudgetRounds, runBudgetArm, type BudgetArm, type BudgetRound } from './budget.js';
import { copyBlobsDirect, verifyBlobs } from './ceiling.js';
import { ferryCopy, skopeoDestination, skopeoSync, verifyCopy } from './copiers.js';
import { seedFixture } from './fixtures.js';
import type { Fixture, SeededRepository } from './fixtures.js';
import { formatCpuTable, formatTable, machineFacts, median, met, timeRow, writeResults } from './report.js';
import type { Round, Row } from './report.js';
import { countRequests } from './requests.js';
import { ferryCopyPeakRss } from './rss.js';
import { runScenario } from './scenario.js';
import type { Arm, CpuAccounts } from './scenario.js';
import { startFerryServer } from './service.js';
import type { FerryServer } from './service.js';

const NOTES = [
  'skopeo runs with an empty blob-info cache each time, or it would mount the previous rounds\' blobs instead of copying them.',
  'ferry serve is one process for the whole run: from many-small round 1 on it mounts blobs copied by earlier rounds; its warm-up round is a real copy.',
];
const PARTS = ['bulk', 'small', 'noop', 'multiarch', 'remote', 'rss', 'ceiling', 'budget'] as const;
/** Added to every request of the remote scenario, on each registry. */
const REMOTE_DELAY_MS = 10;
type Part = (typeof PARTS)[number];
/** ferry copy's default --concurrency, which the ceiling loop uses too. */
const FERRY_CONCURRENCY = REPLICATION_DEFAULTS.blobConcurrency;

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, only: { type: 'string', default: PARTS.join(',') } } });
const rounds = Number(values.rounds);
const only = new Set(values.only.split(',').map((part) => part.trim()).filter(Boolean));
const unknown = [...only].filter((part) => !(PARTS as readonly string[]).includes(part));
if (!Number.isSafeInteger(rounds) || rounds < 1 || unknown.length > 0 || only.size === 0) {
  console.error(`usage: tsx bench/run.ts [--rounds N (at least 1)] [--only ${PARTS.join(',')}]`);
  process.exit(2);
}
const selected = (part: Part): boolean => only.has(part);

const date = new Date();
const started = performance.now();
const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-'));
const cleanups: Array<() => Promise<void>> = [];
let server: FerryServer | undefined;
// registry.ts stops its registries on these signals; this takes the rest.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server?.kill();
    rmSync(dir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

const rows: Row[] = [];
const results: Record<string, unknown> = {};
try {
  const [source, destination] = await Promise.all([startRegistry(), startRegistry()]);
  cleanups.push(source.stop, destination.stop);
  const src = source.host;
  const dst = destination.host;
  const accounts: CpuAccounts = { registries: [source.pid, destination.pid], clients: () => (server ? ['self', server.pid] : ['self']) };
  /** The loopback scenarios, for the table of where the time goes. */
  const profiled: Record<string, Round[]> = {};

  const seed = async (fixture: Fixture): Promise<SeededRepository> => {
    process.stdout.write(`generating and seeding ${fixture}... `);
    const began = performance.now();
    const seeded = await seedFixture(fixture, dir, src);
    console.log(`${((performance.now() - began) / 1000).toFixed(1)} s`);
    return seeded;
  };
  /** `namespace(round)`: where the round's copy goes, under which ferry keeps the repository path. */
  const ferryArm = (seeded: SeededRepository, namespace: (round: number) => string): Arm => {
    const target = (round: number): string => `${namespace(round)}/${seeded.repository}`;
    return {
      name: 'ferry',
      copy: (round) => ferryCopy(src, seeded.repository, dst, target(round)),
      verify: (round) => verifyCopy(dst, target(round), seeded),
    };
  };
  const skopeoArm = (seeded: SeededRepository, namespace: (round: number) => string): Arm => ({
    name: 'skopeo',
    copy: (round) => skopeoSync(src, seeded.repository, dst, namespace(round)),
    verify: (round) => verifyCopy(dst, skopeoDestination(seeded.repository, namespace(round)), seeded),
  });

  if (selected('bulk') || selected('ceiling')) {
    const bulk = await seed('bulk');
    const digests = [...new Set(Object.values(bulk.tags).flatMap((tag) => tag.blobs))];
    const ceilingTarget = (round: number): string => `bulk-ceiling-${round}/${bulk.repository}`;
    const arms = [ferryArm(bulk, (round) => `bulk-ferry-${round}`)];
    if (selected('bulk')) arms.push(skopeoArm(bulk, (round) => `bulk-skopeo-${round}`));
    if (selected('ceiling')) {
      arms.push({
        name: 'ceiling',
        copy: (round) => copyBlobsDirect(src, bulk.repository, digests, dst, ceilingTarget(round), FERRY_CONCURRENCY),
        verify: (round) => verifyBlobs(dst, ceilingTarget(round), digests),
      });
    }
    const bulkRounds = await runScenario('bulk', arms, rounds, accounts);
    profiled.bulk = bulkRounds;
    results.bulk = bulkRounds;
    if (selected('bulk')) rows.push(timeRow('bulk: 16 tags x 4 layers of 2 MiB', bulkRounds, 'ferry', 'skopeo', 0.6));
    if (selected('ceiling')) rows.push(timeRow(`bulk: ${digests.length} blobs, ferry vs ceiling`, bulkRounds, 'ferry', 'ceiling', 1.25));
  }

  if (selected('small') || selected('noop')) {
    const small = await seed('small');
    const tagCount = Object.keys(small.tags).length;
    server = await startFerryServer(dir, src, dst);
    cleanups.push(server.stop);
    const service = server;
    // One policy per round of many-small, each into a namespace of its own; the no-op triggers them again.
    const policies = await Promise.all(
      Array.from({ length: rounds + 1 }, (_, round) =>
        service.createPolicy({ name: `small-${round}`, repository: small.repository, namespace: `small-service-${round}` }),
      ),
    );
    const serviceArm = (round: (timed: number) => number): Arm => ({
      name: 'service',
      copy: (timed) => service.runPolicy(policies[round(timed)]!),
      verify: (timed) => verifyCopy(dst, `small-service-${round(timed)}/${small.repository}`, small),
    });
    const smallArms = (round: (timed: number) => number): Arm[] => [
      ferryArm(small, (timed) => `small-ferry-${round(timed)}`),
      skopeoArm(small, (timed) => `small-skopeo-${round(timed)}`),
      serviceArm(round),
    ];
    // Without timed rounds of its own, many-small still runs its warm-up: the no-op needs a full destination.
    const smallRounds = await runScenario('many small', smallArms((round) => round), selected('small') ? rounds : 0, accounts);
    if (selected('small')) {
      results.small = smallRounds;
      profiled['many small'] = smallRounds;
      rows.push(timeRow('many small: 200 tags x 2 layers of 4 KiB', smallRounds, 'ferry', 'skopeo', 0.2));
      // After the warm-up the service mounts what earlier rounds copied (its BlobLocator lives as long as the process).
      rows.push(timeRow('many small, ferry serve (mounts)', smallRounds, 'service', 'skopeo'));
    }
    if (selected('noop')) {
      // Each no-op round re-syncs into the destination of the same many-small round.
      const previous = (round: number): number => (selected('small') ? round : 0);
      const noopRounds = await runScenario('no-op', smallArms(previous), rounds, accounts);
      profiled['no-op'] = noopRounds;
      results.noop = noopRounds;
      rows.push(timeRow('no-op: re-sync of many small', noopRounds, 'ferry', 'skopeo', 0.2));
      rows.push(timeRow('no-op, ferry serve policy', noopRounds, 'service', 'skopeo'));

      const proxies = await Promise.all([startFaultProxy(src), startFaultProxy(dst)]);
      cleanups.push(async () => void (await Promise.all(proxies.map((proxy) => proxy.stop()))));
      const [srcProxy, dstProxy] = proxies;
      const ferry = await countRequests(proxies, () => ferryCopy(srcProxy!.host, small.repository, dstProxy!.host, `small-ferry-0/${small.repository}`));
      const skopeo = await countRequests(proxies, () => skopeoSync(srcProxy!.host, small.repository, dstProxy!.host, 'small-skopeo-0'));
      results.noopRequests = { tags: tagCount, ferry, skopeo };
      console.log(`no-op requests: ferry ${ferry.total} ${JSON.stringify(ferry.byKind)}, skopeo ${skopeo.total} ${JSON.stringify(skopeo.byKind)}`);
      rows.push({
        scenario: 'no-op: HTTP requests per tag',
        ferry: ferry.total / tagCount,
        unit: 'req/tag',
        reference: { name: 'skopeo', value: skopeo.total / tagCount },
        goal: { max: 2, of: 'value' },
      });
    }
  }

  if (selected('multiarch')) {
    const multiarch = await seed('multiarch');
    const multiarchRounds = await runScenario('multi-arch', [
      ferryArm(multiarch, (round) => `multiarch-ferry-${round}`),
      skopeoArm(multiarch, (round) => `multiarch-skopeo-${round}`),
    ], rounds, accounts);
    results.multiarch = multiarchRounds;
    profiled['multi-arch'] = multiarchRounds;
    rows.push(timeRow('multi-arch: 10 tags, indexes of 4 platforms', multiarchRounds, 'ferry', 'skopeo', 0.5));
  }

  if (selected('remote')) {
    const remote = await seed('remote');
    const proxies = await Promise.all([startFaultProxy(src), startFaultProxy(dst)]);
    cleanups.push(async () => void (await Promise.all(proxies.map((proxy) => proxy.stop()))));
    for (const proxy of proxies) proxy.addRule({ path: /./, fault: { type: 'delay', ms: REMOTE_DELAY_MS } });
    const [srcProxy, dstProxy] = proxies;
    const remoteRounds = await runScenario('remote', [
      {
        name: 'ferry',
        copy: (round) => ferryCopy(srcProxy!.host, remote.repository, dstProxy!.host, `remote-ferry-${round}/${remote.repository}`),
        verify: (round) => verifyCopy(dst, `remote-ferry-${round}/${remote.repository}`, remote),
      },
      {
        name: 'skopeo',
        copy: (round) => skopeoSync(srcProxy!.host, remote.repository, dstProxy!.host, `remote-skopeo-${round}`),
        verify: (round) => verifyCopy(dst, skopeoDestination(remote.repository, `remote-skopeo-${round}`), remote),
      },
    ], rounds, accounts);
    results.remote = remoteRounds;
    rows.push(timeRow(`many small, ${REMOTE_DELAY_MS} ms per request: 40 tags x 2 layers of 4 KiB`, remoteRounds, 'ferry', 'skopeo'));
  }

  if (selected('rss')) {
    const big = await seed('big');
    const rss = await ferryCopyPeakRss(dir, `${src}/${big.repository}:v1`, `${dst}/rss/${big.repository}:v1`);
    await verifyCopy(dst, `rss/${big.repository}`, big);
    results.rss = rss;
    console.log(`1 GiB layer: ferry copy ${rss.seconds.toFixed(1)} s (${(1024 / rss.seconds).toFixed(0)} MiB/s), peak RSS ${(rss.bytes / 1e6).toFixed(0)} MB`);
    rows.push({ scenario: 'peak RSS copying one 1 GiB layer', ferry: rss.bytes / 1e6, unit: 'MB', goal: { max: 150, of: 'value' } });
  }

  if (selected('budget')) {
    const seeded = await seed('budget');
    const proxy = await startFaultProxy(src);
    cleanups.push(proxy.stop);
    const budgetRounds: BudgetRound[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const arm of BUDGET_ARMS.map((_, i) => BUDGET_ARMS[(i + round) % BUDGET_ARMS.length]!)) {
        const result = await runBudgetArm(arm, proxy, seeded, dst, `budget-${arm.replace(' ', '-')}-${round}`);
        console.log(`429 scenario round ${round}, ${arm}: ${result.seconds.toFixed(2)} s, ${result.requests} requests, ${result.refused} 429s, ${result.finished} jobs finished`);
        budgetRounds.push(result);
      }
    }
    console.log(`\n${formatBudgetRounds(budgetRounds)}\n`);
    results.budget = budgetRounds;
    const of = (arm: BudgetArm, value: (round: BudgetRound) => number): number => median(budgetRounds.filter((r) => r.arm === arm).map(value));
    const versus = (scenario: string, unit: string, value: (round: BudgetRound) => number): Row => {
      const [shared, none] = [of('shared', value), of('none', value)];
      return { scenario, ferry: shared, unit, reference: { name: 'no budget', value: none }, ...(none > 0 && { ratio: shared / none }) };
    };
    rows.push(versus('429 scenario: wall time, shared budget', 's', (r) => r.seconds));
    rows.push(versus('429 scenario: requests the source saw', 'req', (r) => r.requests));
    rows.push(versus('429 scenario: 429s', 'req', (r) => r.refused));
  }

  const durationSeconds = (performance.now() - started) / 1000;
  console.log(`\n${formatTable(rows)}\n`);
  if (Object.keys(profiled).length > 0) console.log(`Where the time goes (medians; client = the bench process, its commands and ferry serve):\n${formatCpuTable(profiled, cpus().length)}\n`);
  const path = await writeResults(date, {
    date: date.toISOString(),
    durationSeconds,
    options: { rounds, only: [...only] },
    machine: await machineFacts(),
    table: rows.map((row) => ({ ...row, met: met(row) })),
    notes: NOTES,
    results,
  });
  console.log(`${path} (${(durationSeconds / 60).toFixed(1)} min)`);
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.error('cleanup:', error));
  await rm(dir, { recursive: true, force: true });
}

/**
 * ferry against skopeo between two real registries on loopback (issue 6): bulk, many small
 * tags, a no-op re-sync and multi-arch images, each timed alternately over several rounds; plus
 * HTTP requests per tag of a no-op, ferry's peak RSS copying a 1 GiB layer, the machine's
 * ceiling for the bulk blobs and the client's CPU per GiB and per no-op request. Then bulk, many
 * small, no-op and multi-arch again with both registries behind one far link (issue 14,
 * bench/link.ts: 40 ms round trip, 200 Mbit/s each way), each beside the floor the link sets: on
 * loopback the registries' CPU bounds both tools, across a network round trips and bandwidth do.
 * Prints a table and writes it with every round to bench/results/. Also, without a goal: the 429 scenario of issue 12 (bench/budget.ts): jobs
 * against a source that rations manifest GETs, with their budget shared, one each, or none.
 *   npx tsx bench/run.ts [--rounds 3] [--only bulk,small,noop,multiarch,far-bulk,far-small,far-noop,far-multiarch,rss,ceiling,budget]
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
import { FAR_LINK, describeLink, roundTripMs, startLink } from './link.js';
import type { LinkProfile, LinkStats } from './link.js';
import { formatCpuTable, formatTable, machineFacts, median, medianCpu, medianOf, met, ratioRow, timeRow, writeResults } from './report.js';
import type { Round, Row } from './report.js';
import { cpuSeconds } from './process.js';
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
const PARTS = ['bulk', 'small', 'noop', 'multiarch', 'far-bulk', 'far-small', 'far-noop', 'far-multiarch', 'rss', 'ceiling', 'budget'] as const;
type Part = (typeof PARTS)[number];
const FAR_PARTS: Part[] = ['far-bulk', 'far-small', 'far-noop', 'far-multiarch'];
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/**
 * The round trips a copy over the link cannot avoid, one after the other (anonymous registries:
 * no token, and no `GET /v2/` ping is needed). Single-arch tags: the TCP handshake, GET the tag
 * list, GET a manifest, GET its blobs (their bytes start one round trip after the request), the
 * last byte up to the destination and its upload's 201 back (one round trip after it came down:
 * the upload streams behind the download, and opening it overlaps the source's requests), PUT
 * the manifest. An index adds a GET of a platform's manifest before its blobs and a PUT of the
 * index after the platforms'. A no-op: the handshake, the tag list, then a HEAD of each manifest
 * on both registries at once.
 */
const ROUND_TRIPS = { copy: 6, multiarch: 8, noop: 3 };

/**
 * The least time a copy can take over the link: `bytes` (each unique blob and manifest once)
 * cross down from the source and up to the destination, the two directions at once, so the
 * slower direction sets the time; plus the round trips.
 */
function floorSeconds(profile: LinkProfile, bytes: number, roundTrips: number): number {
  const seconds = (direction: LinkProfile['up']): number => (bytes * 8) / direction.bitsPerSecond;
  return Math.max(seconds(profile.up), seconds(profile.down)) + (roundTrips * roundTripMs(profile)) / 1000;
}
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
  /** The scenarios, for the table of where the time goes. */
  const profiled: Record<string, Round[]> = {};

  /** Each fixture is seeded once, for the loopback and the far scenarios alike. */
  const seedings = new Map<Fixture, Promise<SeededRepository>>();
  const seed = (fixture: Fixture): Promise<SeededRepository> => {
    const known = seedings.get(fixture);
    if (known) return known;
    const seeding = (async () => {
      process.stdout.write(`generating and seeding ${fixture}... `);
      const began = performance.now();
      const repository = await seedFixture(fixture, dir, src);
      console.log(`${((performance.now() - began) / 1000).toFixed(1)} s`);
      return repository;
    })();
    seedings.set(fixture, seeding);
    return seeding;
  };
  /** Where the arms reach the registries: directly, or through the far link. Copies are verified directly. */
  type Route = { src: string; dst: string };
  const direct: Route = { src, dst };
  /** `namespace(round)`: where the round's copy goes, under which ferry keeps the repository path. */
  const ferryArm = (seeded: SeededRepository, namespace: (round: number) => string, route = direct): Arm => {
    const target = (round: number): string => `${namespace(round)}/${seeded.repository}`;
    return {
      name: 'ferry',
      copy: (round) => ferryCopy(route.src, seeded.repository, route.dst, target(round)),
      verify: (round) => verifyCopy(dst, target(round), seeded),
    };
  };
  const skopeoArm = (seeded: SeededRepository, namespace: (round: number) => string, route = direct): Arm => ({
    name: 'skopeo',
    copy: (round) => skopeoSync(route.src, seeded.repository, route.dst, namespace(round)),
    verify: (round) => verifyCopy(dst, skopeoDestination(seeded.repository, namespace(round)), seeded),
  });
  const blobsOf = (seeded: SeededRepository): string[] => [...new Set(Object.values(seeded.tags).flatMap((tag) => tag.blobs))];
  /** The machine's ceiling: the blobs alone, each a GET streamed into a POST and PUT, as many at once as ferry copies. */
  const ceilingArm = (seeded: SeededRepository, namespace: (round: number) => string, route = direct): Arm => {
    const target = (round: number): string => `${namespace(round)}/${seeded.repository}`;
    return {
      name: 'ceiling',
      copy: (round) => copyBlobsDirect(route.src, seeded.repository, blobsOf(seeded), route.dst, target(round), FERRY_CONCURRENCY),
      verify: (round) => verifyBlobs(dst, target(round), blobsOf(seeded)),
    };
  };
  /** The client's CPU per GiB a bulk copy moved, ferry's against skopeo's. */
  const cpuPerGiBRow = (scenario: string, rounds: Round[], bytes: number): Row => {
    const perGiB = (arm: string): number => medianCpu(rounds, arm).client / (bytes / GiB);
    return ratioRow(scenario, perGiB('ferry'), 's/GiB', { name: 'skopeo', value: perGiB('skopeo') }, 1);
  };

  if (selected('bulk') || selected('ceiling')) {
    const bulk = await seed('bulk');
    const digests = blobsOf(bulk);
    const arms = [ferryArm(bulk, (round) => `bulk-ferry-${round}`)];
    if (selected('bulk')) arms.push(skopeoArm(bulk, (round) => `bulk-skopeo-${round}`));
    if (selected('ceiling')) arms.push(ceilingArm(bulk, (round) => `bulk-ceiling-${round}`));
    const bulkRounds = await runScenario('bulk', arms, rounds, accounts);
    profiled.bulk = bulkRounds;
    results.bulk = bulkRounds;
    if (selected('bulk')) {
      rows.push(timeRow('bulk: 16 tags x 4 layers of 2 MiB', bulkRounds, 'ferry', 'skopeo', 0.6));
      rows.push(cpuPerGiBRow('bulk: client CPU per GiB copied', bulkRounds, bulk.bytes));
    }
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
      rows.push(timeRow('many small: 200 tags x 2 layers of 4 KiB', smallRounds, 'ferry', 'skopeo', 0.35));
      // After the warm-up the service mounts what earlier rounds copied (its BlobLocator lives as long as the process).
      rows.push(timeRow('many small, ferry serve (mounts)', smallRounds, 'service', 'skopeo'));
    }
    if (selected('noop')) {
      // Each no-op round re-syncs into the destination of the same many-small round.
      const previous = (round: number): number => (selected('small') ? round : 0);
      const noopRounds = await runScenario('no-op', smallArms(previous), rounds, accounts);
      profiled['no-op'] = noopRounds;
      results.noop = noopRounds;
      rows.push(timeRow('no-op: re-sync of many small', noopRounds, 'ferry', 'skopeo', 0.3));
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
      rows.push({
        scenario: 'no-op: client CPU per request',
        ferry: (medianCpu(noopRounds, 'ferry').client * 1000) / ferry.total,
        unit: 'ms/req',
        reference: { name: 'skopeo', value: (medianCpu(noopRounds, 'skopeo').client * 1000) / skopeo.total },
        goal: { max: 0.5, of: 'value' },
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
    rows.push(timeRow('multi-arch: 10 tags, indexes of 4 platforms', multiarchRounds, 'ferry', 'skopeo', 0.45));
  }

  if (FAR_PARTS.some(selected)) {
    const link = await startLink(FAR_LINK);
    cleanups.push(link.stop);
    const [farSrc, farDst] = await Promise.all([link.expose(src), link.expose(dst)]);
    const far: Route = { src: farSrc, dst: farDst };
    const linkName = describeLink(link.profile);
    console.log(`far link: ${linkName}; source ${src} as ${farSrc}, destination ${dst} as ${farDst}`);
    /** What each arm's copies carried over the link, read after each copy (the verification goes around it). */
    const carried: Array<{ scenario: string; round: number; arm: string } & LinkStats> = [];
    let last = await link.stats();
    const counted = (scenario: string, arm: Arm): Arm => ({
      ...arm,
      async verify(round) {
        const now = await link.stats();
        carried.push({ scenario, round, arm: arm.name, up: now.up - last.up, down: now.down - last.down, connections: now.connections - last.connections });
        last = now;
        await arm.verify(round);
      },
    });
    const runFar = async (scenario: string, arms: Arm[], timed: number): Promise<Round[]> => {
      last = await link.stats();
      const cpuBefore = cpuSeconds(link.pid);
      const farRounds = await runScenario(scenario, arms.map((arm) => counted(scenario, arm)), timed, accounts);
      for (const arm of arms) {
        const each = carried.filter((entry) => entry.scenario === scenario && entry.arm === arm.name && entry.round > 0);
        const of = (value: (entry: LinkStats) => number): number => median(each.map(value));
        if (each.length > 0) console.log(`${scenario}, ${arm.name} over the link: ${(of((e) => e.down) / MiB).toFixed(1)} MiB down, ${(of((e) => e.up) / MiB).toFixed(1)} MiB up, ${of((e) => e.connections)} connections`);
      }
      console.log(`${scenario}: the link process used ${(cpuSeconds(link.pid) - cpuBefore).toFixed(2)} s of CPU`);
      return farRounds;
    };
    /** An arm's median time against the floor of a copy of `bytes` that takes `roundTrips`. */
    const floorRow = (scenario: string, rounds: Round[], arm: string, bytes: number, roundTrips: number, maxRatio?: number): Row => {
      const floor = { name: 'floor', value: floorSeconds(link.profile, bytes, roundTrips) };
      return ratioRow(`${scenario} vs floor (${(bytes / MiB).toFixed(1)} MiB, ${roundTrips} round trips)`, medianOf(rounds, arm), 's', floor, maxRatio);
    };
    results.farLink = { profile: link.profile, carried };

    if (selected('far-bulk')) {
      const bulk = await seed('bulk');
      const farBulkRounds = await runFar('far bulk', [
        ferryArm(bulk, (round) => `far-bulk-ferry-${round}`, far),
        skopeoArm(bulk, (round) => `far-bulk-skopeo-${round}`, far),
        ceilingArm(bulk, (round) => `far-bulk-ceiling-${round}`, far),
      ], rounds);
      profiled['far bulk'] = farBulkRounds;
      results.farBulk = farBulkRounds;
      rows.push(timeRow(`far bulk (${linkName}): 16 tags x 4 layers of 2 MiB`, farBulkRounds, 'ferry', 'skopeo', 0.45));
      rows.push(floorRow('far bulk, ferry', farBulkRounds, 'ferry', bulk.bytes, ROUND_TRIPS.copy, 1.15));
      // What a bare blob loop reaches through the emulator: whether the floor is in reach at all.
      rows.push(floorRow('far bulk, a bare GET->POST->PUT blob loop', farBulkRounds, 'ceiling', bulk.bytes, ROUND_TRIPS.copy));
      rows.push(cpuPerGiBRow('far bulk: client CPU per GiB copied', farBulkRounds, bulk.bytes));
    }

    if (selected('far-small') || selected('far-noop')) {
      const small = await seed('far-small');
      const smallArms = (round: (timed: number) => number): Arm[] => [
        ferryArm(small, (timed) => `far-small-ferry-${round(timed)}`, far),
        skopeoArm(small, (timed) => `far-small-skopeo-${round(timed)}`, far),
      ];
      // Without timed rounds of its own, many-small still runs its warm-up: the no-op needs a full destination.
      const farSmallRounds = await runFar('far many small', smallArms((round) => round), selected('far-small') ? rounds : 0);
      if (selected('far-small')) {
        profiled['far many small'] = farSmallRounds;
        results.farSmall = farSmallRounds;
        rows.push(timeRow('far many small: 40 tags x 2 layers of 4 KiB', farSmallRounds, 'ferry', 'skopeo', 0.05));
        rows.push(floorRow('far many small, ferry', farSmallRounds, 'ferry', small.bytes, ROUND_TRIPS.copy));
      }
      if (selected('far-noop')) {
        const previous = (round: number): number => (selected('far-small') ? round : 0);
        const farNoopRounds = await runFar('far no-op', smallArms(previous), rounds);
        profiled['far no-op'] = farNoopRounds;
        results.farNoop = farNoopRounds;
        rows.push(timeRow('far no-op: re-sync of far many small', farNoopRounds, 'ferry', 'skopeo', 0.04));
        rows.push(floorRow('far no-op, ferry', farNoopRounds, 'ferry', 0, ROUND_TRIPS.noop));
      }
    }

    if (selected('far-multiarch')) {
      const multiarch = await seed('far-multiarch');
      const farMultiarchRounds = await runFar('far multi-arch', [
        ferryArm(multiarch, (round) => `far-multiarch-ferry-${round}`, far),
        skopeoArm(multiarch, (round) => `far-multiarch-skopeo-${round}`, far),
      ], rounds);
      profiled['far multi-arch'] = farMultiarchRounds;
      results.farMultiarch = farMultiarchRounds;
      rows.push(timeRow('far multi-arch: 4 tags, indexes of 4 platforms', farMultiarchRounds, 'ferry', 'skopeo'));
      rows.push(floorRow('far multi-arch, ferry', farMultiarchRounds, 'ferry', multiarch.bytes, ROUND_TRIPS.multiarch));
    }
  }

  if (selected('rss')) {
    const big = await seed('big');
    const rss = await ferryCopyPeakRss(dir, `${src}/${big.repository}:v1`, `${dst}/rss/${big.repository}:v1`);
    await verifyCopy(dst, `rss/${big.repository}`, big);
    results.rss = rss;
    console.log(`1 GiB layer: ferry copy ${rss.seconds.toFixed(1)} s (${(1024 / rss.seconds).toFixed(0)} MiB/s), peak RSS ${(rss.bytes / 1e6).toFixed(0)} MB`);
    rows.push({ scenario: 'peak RSS copying one 1 GiB layer', ferry: rss.bytes / 1e6, unit: 'MB', goal: { max: 100, of: 'value' } });
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

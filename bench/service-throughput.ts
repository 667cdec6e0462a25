/**
 * Jobs per second through the job service when every tag is already on the destination (the
 * cost of a sync that copies nothing: queue, store, machine, registry checks), on `ferry serve`
 * processes: SQLite with one node, PostgreSQL with one, two and three nodes on one database.
 *   npm run bench:service [-- --repositories 200 --workers 4 --rounds 3]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeOciLayout } from '../test/support/images.js';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.js';
import { startRegistry } from '../test/support/registry.js';
import { seedTag } from '../test/support/skopeo.js';
import { readdirSync, readFileSync } from 'node:fs';
import { cpuSeconds, seconds } from './process.js';
import { startFerryNode, type FerryServer } from './service.js';

const { values } = parseArgs({ options: { repositories: { type: 'string', default: '200' }, workers: { type: 'string', default: '4' }, rounds: { type: 'string', default: '3' } } });
const repositories = Number(values.repositories);
const workers = Number(values.workers);
const rounds = Number(values.rounds);
const SETUPS = [
  { engine: 'sqlite', nodes: 1 },
  { engine: 'postgres', nodes: 1 },
  { engine: 'postgres', nodes: 2 },
  { engine: 'postgres', nodes: 3 },
] as const;

const median = (values: number[]) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** CPU seconds of every PostgreSQL server process on the machine (the server and its backends). */
function postgresCpu(): number {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') total += cpuSeconds(Number(pid));
    } catch {
      // Gone between the listing and the read.
    }
  }
  return total;
}

const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-service-'));
const [, source, destination] = await Promise.all([
  writeOciLayout(join(dir, 'layout'), { '1.0': { layers: [{ size: 4096, seed: 'svc-bench' }] } }),
  startRegistry(),
  startRegistry(),
]);
const results: Array<{ setup: string; rates: number[]; median: number; cpuPerJobMs: { nodes: number; postgres: number } }> = [];
try {
  for (let i = 0; i < repositories; i += 8) {
    await Promise.all(
      Array.from({ length: Math.min(8, repositories - i) }, (_, k) =>
        Promise.all([source, destination].map((r) => seedTag(join(dir, 'layout'), '1.0', { host: r.host, repository: `bench/app-${i + k}` }))),
      ),
    );
  }
  for (const { engine, nodes } of SETUPS) {
    const setup = `${engine}, ${nodes} node${nodes > 1 ? 's' : ''} × ${workers} workers`;
    let database: TestDatabase | undefined;
    const servers: FerryServer[] = [];
    try {
      database = engine === 'postgres' ? await createTestDatabase('bench') : undefined;
      const location = database?.url ?? join(dir, `ferry-${Date.now()}.db`);
      for (let n = 0; n < nodes; n++) {
        servers.push(await startFerryNode({ database: location, workers, ...(n === 0 ? { register: { source: source.host, destination: destination.host } } : {}) }));
      }
      const policy = await servers[0]!.createPolicy({ name: 'noop', repository: 'bench/**' });
      const rates: number[] = [];
      const nodesCpu = () => servers.reduce((sum, server) => sum + cpuSeconds(server.pid), 0);
      const before = { nodes: nodesCpu(), postgres: postgresCpu() };
      for (let round = 1; round <= rounds; round++) {
        const took = await seconds(() => servers[0]!.runPolicy(policy));
        rates.push(repositories / took);
        console.log(`${setup}: round ${round}: ${repositories} jobs in ${took.toFixed(2)} s = ${(repositories / took).toFixed(0)} jobs/s`);
      }
      const jobs = repositories * rounds;
      const cpuPerJobMs = { nodes: ((nodesCpu() - before.nodes) * 1000) / jobs, postgres: ((postgresCpu() - before.postgres) * 1000) / jobs };
      results.push({ setup, rates, median: median(rates), cpuPerJobMs });
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
      await database?.drop();
    }
  }
  console.log(`\n| setup | jobs/s (median of ${rounds}) | CPU per job: ferry nodes | CPU per job: PostgreSQL |\n| --- | --- | --- | --- |`);
  for (const { setup, median, cpuPerJobMs } of results) {
    console.log(`| ${setup} | ${median.toFixed(0)} | ${cpuPerJobMs.nodes.toFixed(1)} ms | ${cpuPerJobMs.postgres.toFixed(1)} ms |`);
  }
  const file = join('bench', 'results', `service-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z.json`);
  await writeFile(file, `${JSON.stringify({ repositories, workers, rounds, results }, null, 2)}\n`);
  console.log(`\nwritten to ${file}`);
} finally {
  await Promise.all([source.stop(), destination.stop()]);
  await rm(dir, { recursive: true, force: true });
}

/**
 * Jobs per second through the job service (queue, SQLite store, machine, registry checks) when
 * every tag is already on the destination: the cost of a sync that copies nothing.
 *   npm run bench:service [-- --repositories 200 --workers 4]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { FerryService } from '../src/services/service.js';
import { writeOciLayout } from '../test/support/images.js';
import { startRegistry } from '../test/support/registry.js';
import { seedTag } from '../test/support/skopeo.js';

const { values } = parseArgs({ options: { repositories: { type: 'string', default: '200' }, workers: { type: 'string', default: '4' }, rounds: { type: 'string', default: '3' } } });
const repositories = Number(values.repositories);
const workers = Number(values.workers);

const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-service-'));
const [, source, destination] = await Promise.all([
  writeOciLayout(join(dir, 'layout'), { '1.0': { layers: [{ size: 4096, seed: 'svc-bench' }] } }),
  startRegistry(),
  startRegistry(),
]);
try {
  for (let i = 0; i < repositories; i += 8) {
    await Promise.all(
      Array.from({ length: Math.min(8, repositories - i) }, (_, k) =>
        Promise.all([source, destination].map((r) => seedTag(join(dir, 'layout'), '1.0', { host: r.host, repository: `bench/app-${i + k}` }))),
      ),
    );
  }
  const service = await FerryService.start({ database: join(dir, 'ferry.db'), workers, logger: pino({ level: 'silent' }) });
  const src = await service.store.registries.create({ name: 'source', url: source.host });
  const dst = await service.store.registries.create({ name: 'destination', url: destination.host });
  const policy = await service.store.policies.create({ name: 'noop', sourceRegistryId: src.id, destinationRegistryId: dst.id });
  const rates: number[] = [];
  for (let round = 1; round <= Number(values.rounds); round++) {
    const started = performance.now();
    const { execution, jobs } = await service.scheduler.trigger(policy, 'manual');
    for (;;) {
      const now = await service.store.executions.get(execution.id);
      if (now && !['pending', 'running'].includes(now.status)) {
        if (now.jobs.finished !== jobs.length) throw new Error(`round ${round}: ${JSON.stringify(now.jobs)}`);
        break;
      }
      await sleep(10);
    }
    const seconds = (performance.now() - started) / 1000;
    rates.push(jobs.length / seconds);
    console.log(`round ${round}: ${jobs.length} jobs (every tag already there) in ${seconds.toFixed(2)} s = ${(jobs.length / seconds).toFixed(0)} jobs/s`);
  }
  rates.sort((a, b) => a - b);
  console.log(`median: ${rates[Math.floor(rates.length / 2)]!.toFixed(0)} jobs/s with ${workers} workers (catalog listing and planning included)`);
  await service.close();
} finally {
  await Promise.all([source.stop(), destination.stop()]);
  await rm(dir, { recursive: true, force: true });
}

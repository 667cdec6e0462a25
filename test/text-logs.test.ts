import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../src/services/logger.js';
import { FerryService } from '../src/services/service.js';
import type { Job } from '../src/services/store/types.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';

let fixture: ReplicationFixture;
let dir: string;

beforeAll(async () => {
  const layer = (seed: string) => ({ layers: [{ size: 10_000, seed: 'text-base' }, { size: 5_000, seed }] });
  fixture = await replicationFixture({ a: layer('text-a'), b: layer('text-b') }, 'logs/one');
  dir = await mkdtemp(join(tmpdir(), 'ferry-text-logs-'));
});

afterAll(async () => {
  await fixture?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('text logs', () => {
  it('name the job and its repository on every line of a job', async () => {
    const written: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
    const service = await FerryService.start({ database: join(dir, 'ferry.db'), workers: 2, logger: createLogger('text', process.stdout, 'info') });
    let job: Job | undefined;
    try {
      const source = await service.store.registries.create({ name: 'source', url: fixture.source.host });
      const destination = await service.store.registries.create({ name: 'destination', url: fixture.destination.host });
      const policy = await service.store.policies.create({ name: 'mirror', sourceRegistryId: source.id, destinationRegistryId: destination.id });
      const [queued] = (await service.settings.trigger(policy.id)).jobs;
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(25)) {
        job = await service.store.jobs.get(queued!.id);
        if (job?.status === 'finished') break;
      }
    } finally {
      await service.close();
      stderr.mockRestore();
    }
    expect(job?.status).toBe('finished');
    const stored = await logsOf(job!);
    expect(stored.filter((message) => message.startsWith('copied blob'))).toHaveLength(5);
    const prefix = `job ${job!.id} ${fixture.destination.host}/logs/one: `;
    const named = written.filter((line) => line.includes(prefix));
    // Each line the job logged is in the service's text log once, after its job and repository.
    expect(named.map((line) => line.slice(line.indexOf(prefix) + prefix.length).trimEnd())).toEqual(stored);
    expect(written.filter((line) => line.includes(job!.id) && !line.includes(prefix))).toEqual([]);
  });
});

async function logsOf(job: Job): Promise<string[]> {
  const service = await FerryService.start({ database: join(dir, 'ferry.db'), workers: 0, logger: createLogger('json', process.stdout) });
  try {
    return (await service.store.jobs.logs(job.id)).map((entry) => entry.message);
  } finally {
    await service.close();
  }
}

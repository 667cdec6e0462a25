import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Registries } from './registry/registries.js';
import { Scheduler } from './scheduler.js';
import { FerryService } from './service.js';
import { openSqliteStore } from './store/sqlite/connect.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-scheduler-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Scheduler.reload', () => {
  it('logs a stored schedule croner refuses, and the service starts with the other schedules running', async () => {
    const database = join(dir, 'ferry.db');
    const store = openSqliteStore(database);
    const registry = await store.registries.create({ name: 'unreachable', url: 'unreachable.invalid' });
    const links = { sourceRegistryId: registry.id, destinationRegistryId: registry.id };
    const running = await store.policies.create({ name: 'every-second', ...links, trigger: { type: 'cron', schedule: '* * * * * *' } });
    const broken = await store.policies.create({ name: 'from-an-older-version', ...links, trigger: { type: 'cron', schedule: '0 * * * *' } });
    await store.close();
    // As an older version could have stored it, before schedules were checked when written.
    const db = new Database(database);
    db.prepare('UPDATE policies SET trigger = ? WHERE id = ?').run(JSON.stringify({ type: 'cron', schedule: '* * *' }), broken.id);
    db.close();

    const errors: Array<{ msg: string; policy?: string }> = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => errors.push(JSON.parse(line) as { msg: string }) });
    const service = await FerryService.start({ database, workers: 1, logger });
    try {
      expect(errors).toEqual([
        expect.objectContaining({ policy: 'from-an-older-version', msg: expect.stringMatching(/^policy from-an-older-version: schedule "\* \* \*" is not a cron schedule \(.+\); it does not run/) }),
      ]);
      // The slot is claimed and refused, so no run starts against the unreachable registry.
      const fired = new Promise<string>((resolve) => {
        vi.spyOn(service.store.policies, 'claimCronSlot').mockImplementation(async (policyId) => {
          resolve(policyId);
          return false;
        });
      });
      expect(await fired).toBe(running.id);
    } finally {
      await service.close();
    }
  });
});

describe('Scheduler.notify', () => {
  it('coalesces repeated pushes of a tag into one pending job, and queues pushes of other tags', async () => {
    const store = openSqliteStore(':memory:');
    const queued: string[] = [];
    const registries = new Registries(async (registry) => ({ registry }));
    const scheduler = new Scheduler({ store, registries, logger: pino({ level: 'silent' }), queued: (jobs) => queued.push(...jobs.map((job) => job.id)) });
    try {
      const source = await store.registries.create({ name: 'source', url: 'source.example.com' });
      const mirror = await store.registries.create({ name: 'mirror', url: 'mirror.example.com' });
      await store.policies.create({ name: 'on-push', sourceRegistryId: source.id, destinationRegistryId: mirror.id, trigger: { type: 'event' } });
      const push = (tag: string) => ({ action: 'push', target: { repository: 'app', tag } });

      const first = await scheduler.notify(source.id, [push('v1'), push('v1')]);
      expect(first).toHaveLength(1);
      expect(await scheduler.notify(source.id, [push('v1')])).toStrictEqual([]);
      expect(await scheduler.notify(source.id, [push('v2')])).toHaveLength(1);
      expect(queued).toHaveLength(2);
      expect((await store.jobs.list()).total).toBe(2);
    } finally {
      await store.close();
    }
  });
});

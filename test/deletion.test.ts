import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toPromise } from 'xstate';
import { DEFAULT_RETRY } from '../src/machines/retry.js';
import type { DeletionInput } from '../src/machines/deletion.js';
import { jobPhase, jobStatus } from '../src/machines/status.js';
import { createDeletion, type JobEvent } from '../src/services/interpreter.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { environment } from './support/ferry.js';
import { writeOciLayout } from './support/images.js';
import { startRegistry, type RunningRegistry } from './support/registry.js';
import { listTags, seedLayout } from './support/skopeo.js';
import { globFilter } from '../src/services/tag-filter.js';

let layout: string;
let registry: RunningRegistry;
let proxy: FaultProxy;
const TAGS = ['a', 'b', 'c', 'd'];

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-deletion-'));
  [, registry] = await Promise.all([
    writeOciLayout(layout, Object.fromEntries(TAGS.map((t) => [t, { layers: [{ size: 1000, seed: `delete-${t}` }] }]))),
    startRegistry(),
  ]);
  proxy = await startFaultProxy(registry.host);
});

afterEach(() => proxy.clearRules());

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  await rm(layout, { recursive: true, force: true });
});

async function seeded(repository: string): Promise<DeletionInput> {
  await seedLayout(layout, TAGS, { host: registry.host, repository });
  return { destination: { registry: proxy.host, repository }, tagFilter: globFilter([]), concurrency: 4, retry: { ...DEFAULT_RETRY, baseDelayMs: 20, maxDelayMs: 50 } };
}

async function run(input: DeletionInput) {
  const events: JobEvent[] = [];
  const statuses: string[] = [];
  const actor = createDeletion(input, environment(), { onEvent: (e) => events.push(e) });
  actor.subscribe((s) => statuses.at(-1) !== jobStatus(s) && statuses.push(jobStatus(s)));
  actor.start();
  actor.send({ type: 'START' });
  await toPromise(actor);
  return { snapshot: actor.getSnapshot(), events, statuses };
}

describe('deletion job', () => {
  it('deletes the given tags, and counts a tag already gone as done', async () => {
    const input = await seeded('delete/given');
    const { snapshot, events } = await run({ ...input, tags: ['a', 'c', 'gone'] });
    expect(jobStatus(snapshot)).toBe('finished');
    expect(snapshot.context.progress).toEqual({ tagsTotal: 3, tagsDeleted: 2, tagsAbsent: 1 });
    expect(events.filter((e) => e.type === 'tag.deleted').map((e) => (e as { reference: string }).reference).sort()).toEqual(['a', 'c', 'gone']);
    expect((await listTags({ host: registry.host, repository: 'delete/given' })).sort()).toEqual(['b', 'd']);
  });

  it('deletes every tag that passes the filter', async () => {
    const input = await seeded('delete/filtered');
    const { snapshot } = await run({ ...input, tagFilter: globFilter(['*', '!d']) });
    expect(jobStatus(snapshot)).toBe('finished');
    expect(await listTags({ host: registry.host, repository: 'delete/filtered' })).toEqual(['d']);
  });

  it('finishes with nothing to do on a repository that does not exist', async () => {
    const { snapshot } = await run({ destination: { registry: proxy.host, repository: 'delete/never' }, tagFilter: globFilter([]), concurrency: 4, retry: DEFAULT_RETRY });
    expect(jobStatus(snapshot)).toBe('finished');
    expect(snapshot.context.progress.tagsTotal).toBe(0);
  });

  it('retries a transient failure and finishes', async () => {
    const input = await seeded('delete/retried');
    proxy.addRule({ method: 'DELETE', path: /\/manifests\//, times: 1, fault: { type: 'status', status: 503 } });
    const { snapshot, statuses } = await run(input);
    expect(statuses).toEqual(['pending', 'running', 'retrying', 'running', 'finished']);
    expect(jobStatus(snapshot)).toBe('finished');
    expect(await listTags({ host: registry.host, repository: 'delete/retried' })).toEqual([]);
  });

  it('ends in error on a permanent failure, saying what failed', async () => {
    const input = await seeded('delete/denied');
    proxy.addRule({ method: 'DELETE', path: /\/manifests\//, fault: { type: 'status', status: 403, body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}' } });
    const { snapshot } = await run({ ...input, tags: ['a'] });
    expect(jobStatus(snapshot)).toBe('error');
    expect(snapshot.context.error?.message).toMatch(/^DELETE manifest 127\.0\.0\.1:\d+\/delete\/denied@sha256:[0-9a-f]{64}: 403 DENIED: requested access/);
  });

  it('stops during delete, aborting the request under way', async () => {
    const input = await seeded('delete/stopped');
    const held = proxy.hold({ method: 'DELETE', path: /\/manifests\// });
    const actor = createDeletion({ ...input, tags: ['a'] }, environment());
    actor.start();
    actor.send({ type: 'START' });
    const index = await held.arrived;
    expect(jobPhase(actor.getSnapshot())).toBe('delete');
    actor.send({ type: 'STOP' });
    expect(jobStatus(actor.getSnapshot())).toBe('stopped');
    for (let i = 0; i < 50 && !proxy.requests[index]!.aborted; i++) await new Promise((r) => setTimeout(r, 20));
    expect(proxy.requests[index]!.aborted).toBe(true);
    held.release();
    expect((await listTags({ host: registry.host, repository: 'delete/stopped' })).sort()).toEqual(TAGS);
  });
});

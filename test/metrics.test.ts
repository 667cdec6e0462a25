import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../src/services/api/app.js';
import { FerryService } from '../src/services/service.js';
import type { Job, Registry } from '../src/services/store/types.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';

const TOKEN = 'metrics-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };

let fixture: ReplicationFixture;
let dir: string;
let service: FerryService;
let app: FastifyInstance;

beforeAll(async () => {
  fixture = await replicationFixture(
    { v1: { layers: [{ size: 20_000, seed: 'metrics-1' }, { size: 30_000, seed: 'metrics-2' }, { size: 300_000, seed: 'metrics-3' }] } },
    'metrics/app',
  );
  dir = await mkdtemp(join(tmpdir(), 'ferry-metrics-'));
  service = await FerryService.start({ database: join(dir, 'ferry.db'), workers: 2, logger: pino({ level: 'silent' }) });
  app = await buildApi(service, { token: TOKEN });
});

afterAll(async () => {
  await app?.close();
  await service?.close();
  await fixture?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function scrape(): Promise<Sample[]> {
  const response = await app.inject({ method: 'GET', url: '/metrics', headers: auth });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.body
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [, name, labels, value] = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line)!;
      return { name: name!, labels: Object.fromEntries([...(labels ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]])), value: Number(value) };
    });
}

/** The sum of `name`'s samples with these labels (0 when there are none). */
const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);

async function until<T>(what: string, check: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = await check();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function post<T>(url: string, body?: object): Promise<T> {
  const response = await app.inject({ method: 'POST', url: `/api/v1${url}`, headers: auth, ...(body ? { payload: body } : {}) });
  expect(response.statusCode, response.body).toBe(201);
  return response.json() as T;
}

describe('/metrics', () => {
  it('asks for the API token, as the API does', async () => {
    const refused = await app.inject({ method: 'GET', url: '/metrics' });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="ferry"');
  });

  it('moves during and after a copy: jobs by status, blobs and bytes as the job counts them, requests per registry, 429s', async () => {
    const src = fixture.sourceProxy.host;
    const dst = fixture.destinationProxy.host;
    const layers = fixture.built.v1!.blobs;
    const large = layers.find((digest) => digest !== fixture.built.v1!.configs[0])!;
    const source = await post<Registry>('/registries', { name: 'source', url: src });
    const destination = await post<Registry>('/registries', { name: 'destination', url: dst });
    const policy = await post<{ id: string }>('/policies', { name: 'mirror', sourceRegistryId: source.id, destinationRegistryId: destination.id });
    fixture.destinationProxy.addRule({ method: 'PUT', path: /\/manifests\//, times: 1, fault: { type: 'status', status: 429, headers: { 'retry-after': '0' } } });
    const held = fixture.sourceProxy.hold({ method: 'GET', path: new RegExp(`/blobs/${large}`) });
    const live: Array<Record<string, number>> = [];
    const unsubscribe = service.feed.subscribe((change) => live.push(change.progress));

    const { jobs } = await post<{ jobs: Job[] }>(`/policies/${policy.id}/trigger`);
    expect(jobs).toHaveLength(1);
    await held.arrived;
    const during = await until('the other blobs counted', async () => {
      const samples = await scrape();
      return value(samples, 'ferry_blobs_total', { how: 'copied' }) === layers.length - 1 && samples;
    });
    expect(value(during, 'ferry_jobs', { status: 'running' })).toBe(1);
    expect(value(during, 'ferry_queue_depth')).toBe(0);
    expect(value(during, 'ferry_registry_requests_total', { registry: src, method: 'GET', status: '200' })).toBeGreaterThan(0);
    expect(value(during, 'ferry_registry_request_duration_seconds_count', { registry: src, method: 'GET' })).toBeGreaterThan(0);
    // The API's live progress says what the metrics say, before the phase ends.
    await until('live progress', async () => live.some((progress) => progress.blobsCopied === layers.length - 1));
    // So do the job and the job list, which `ferry jobs show` and `ferry jobs ls` read, though the job's last stored step counted none.
    const get = async <T>(url: string): Promise<T> => (await app.inject({ method: 'GET', url: `/api/v1${url}`, headers: auth })).json() as T;
    const shown = await get<Job>(`/jobs/${jobs[0]!.id}`);
    expect(shown).toMatchObject({ status: 'running', phase: 'copying' });
    expect(shown.progress.blobsCopied).toBe(layers.length - 1);
    expect((await get<{ items: Job[] }>('/jobs')).items[0]!.progress.blobsCopied).toBe(layers.length - 1);
    expect((await service.store.jobs.get(jobs[0]!.id))!.progress.blobsCopied ?? 0).toBe(0);

    held.release();
    const job = await until('the job finished', async () => {
      const answer = (await app.inject({ method: 'GET', url: `/api/v1/jobs/${jobs[0]!.id}`, headers: auth })).json() as Job;
      return answer.status === 'finished' && answer;
    });
    unsubscribe();
    const after = await scrape();
    expect(job.progress.blobsCopied).toBe(layers.length);
    expect(value(after, 'ferry_blobs_total', { how: 'copied' })).toBe(job.progress.blobsCopied);
    expect(value(after, 'ferry_bytes_copied_total')).toBe(job.progress.bytesCopied);
    expect(value(after, 'ferry_jobs', { status: 'finished' })).toBe(1);
    expect(value(after, 'ferry_jobs', { status: 'running' })).toBe(0);
    expect(value(after, 'ferry_registry_requests_total', { registry: dst, method: 'PUT', status: '201' })).toBeGreaterThanOrEqual(layers.length + 1);
    expect(value(after, 'ferry_registry_requests_total', { registry: dst, method: 'PUT', status: '429' })).toBe(1);
    expect(value(after, 'ferry_registry_throttled_total', { registry: dst })).toBe(1);
    expect(value(after, 'ferry_registry_throttled_total', { registry: src })).toBe(0);
    expect(value(after, 'ferry_lease_takeovers_total')).toBe(0);
    expect(value(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(after.every((s) => !s.labels.registry || s.labels.registry === src || s.labels.registry === dst)).toBe(true);
  });

  // After the copy above, which gave every labelled metric its first samples.
  it('has every metric the Grafana dashboard in docs/ queries', async () => {
    const dashboard = JSON.parse(await readFile(new URL('../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
    const queried = new Set(dashboard.panels.flatMap((panel) => panel.targets.flatMap((target) => [...target.expr.matchAll(/(\w+)\{job=~"\$job"\}/g)].map((m) => m[1]!))));
    expect(queried.size).toBeGreaterThan(8);
    const exposed = new Set((await scrape()).map((sample) => sample.name));
    expect([...queried].filter((name) => !exposed.has(name))).toEqual([]);
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationFixture, type ReplicationFixture } from '../../../test/support/fixture.js';
import { freePort } from '../../../test/support/registry.js';
import type { MachineGraph } from '../inspector/graph.js';
import { FerryService } from '../service.js';
import { buildApi } from './app.js';

let fixture: ReplicationFixture;
let dir: string;
let service: FerryService;
let api: FastifyInstance;
let base: string;

beforeAll(async () => {
  fixture = await replicationFixture({ '1.0': { layers: [{ size: 40_000, seed: 'live-1' }] } }, 'live/app');
  dir = await mkdtemp(join(tmpdir(), 'ferry-inspector-'));
  service = await FerryService.start({ database: join(dir, 'ferry.db'), workers: 2, logger: pino({ level: 'silent' }) });
  api = await buildApi(service, {});
  const port = await freePort();
  await api.listen({ host: '127.0.0.1', port });
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await api?.close();
  await service?.close();
  await fixture?.stop();
  await rm(dir, { recursive: true, force: true });
});

type Box = { x: number; y: number; width: number; height: number };
const overlap = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

describe('GET /api/v1/machines/:name/graph', () => {
  for (const name of ['replication', 'deletion']) {
    it(`lays out every state and transition of the ${name} machine, labels clear of each other and of the states`, async () => {
      const graph = (await api.inject({ url: `/api/v1/machines/${name}/graph` })).json<MachineGraph>();
      const machine = name === 'replication' ? (await import('../../machines/replication.js')).replicationMachine : (await import('../../machines/deletion.js')).deletionMachine;
      const ids: string[] = [];
      const walk = (node: typeof machine.root) => {
        ids.push(node.id);
        for (const child of Object.values(node.states)) walk(child);
      };
      walk(machine.root);
      expect(graph.nodes.map((n) => n.id).sort()).toEqual(ids.sort());
      expect(graph.edges.length).toBeGreaterThan(5);
      for (const edge of graph.edges) expect(edge.points.length, edge.id).toBeGreaterThanOrEqual(2);
      const labels = graph.edges.map((e) => e.labelBox!).filter(Boolean);
      expect(labels).toHaveLength(graph.edges.length);
      for (const [i, a] of labels.entries()) for (const b of labels.slice(i + 1)) expect(overlap(a, b), `${JSON.stringify(a)} / ${JSON.stringify(b)}`).toBe(false);
      const leaves = graph.nodes.filter((n) => n.kind === 'atomic' || n.kind === 'final' || n.kind === 'history');
      for (const label of labels) for (const node of leaves) expect(overlap(label, node), `label over ${node.id}`).toBe(false);
    });
  }

  it('answers 400 for an unknown machine', async () => {
    expect((await api.inject({ url: '/api/v1/machines/nope/graph' })).statusCode).toBe(400);
  });
});

describe('GET /api/v1/jobs/:id/live', () => {
  it('starts with the job\'s current state, then streams its transitions as edges of the graph', async () => {
    const held = fixture.sourceProxy.hold({ method: 'GET', path: /\/blobs\/sha256:/ });
    const source = await service.store.registries.create({ name: 'source', url: fixture.sourceProxy.host });
    const destination = await service.store.registries.create({ name: 'destination', url: fixture.destination.host });
    const policy = await service.store.policies.create({ name: 'live', sourceRegistryId: source.id, destinationRegistryId: destination.id });
    const { jobs } = await service.scheduler.trigger(policy, 'manual');
    await held.arrived;

    const response = await request(`${base}/api/v1/jobs/${jobs[0]!.id}/live`);
    expect(response.headers['content-type']).toBe('text/event-stream');
    const events: Array<{ event: string; data: Record<string, unknown> }> = [];
    let buffer = '';
    const graph = service.inspector.graph('replication')!;
    const done = (async () => {
      for await (const chunk of response.body) {
        buffer += chunk.toString();
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
          if (event === 'job' && (JSON.parse(data!) as { status: string }).status === 'finished') return;
        }
      }
    })();
    for (let i = 0; i < 100 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(events[0]).toMatchObject({ event: 'snapshot', data: { stateId: 'replication.running.copying' } });
    held.release();
    await done;
    response.body.destroy();

    const transitions = events.filter((e) => e.event === 'transition').map((e) => e.data as { from: string; to: string; edgeIds: string[] });
    // The tag's batch ends, and with it the job.
    expect(transitions.map((t) => t.to)).toEqual(['replication.finished']);
    for (const t of transitions) {
      expect(t.edgeIds).toHaveLength(1);
      const edge = graph.edges.find((e) => e.id === t.edgeIds[0]);
      expect(edge).toMatchObject({ source: t.from, target: t.to });
    }
    expect(events.some((e) => e.event === 'blob' && e.data.state === 'done')).toBe(true);
    expect(events.some((e) => e.event === 'log' && (e.data.entry as { message: string }).message === 'copied 1.0')).toBe(true);
  });

  it('answers 404 for an unknown job', async () => {
    expect((await api.inject({ url: '/api/v1/jobs/nope/live' })).statusCode).toBe(404);
  });
});

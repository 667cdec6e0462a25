import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../src/services/api/app.js';
import { FerryService } from '../src/services/service.js';
import type { Policy } from '../src/services/store/types.js';
import { ferry } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { freePort } from './support/registry.js';

const TOKEN = 'remote-cli-token';

let fixture: ReplicationFixture;
let dir: string;
let service: FerryService;
let api: FastifyInstance;
let policy: Policy;
let server: string[];

beforeAll(async () => {
  fixture = await replicationFixture({ '1.0': { layers: [{ size: 10_000, seed: 'remote-1' }] }, '2.0': { layers: [{ size: 10_000, seed: 'remote-2' }] } }, 'team/app');
  dir = await mkdtemp(join(tmpdir(), 'ferry-remote-'));
  service = await FerryService.start({ database: join(dir, 'ferry.db'), workers: 2, logger: pino({ level: 'silent' }) });
  const port = await freePort();
  api = await buildApi(service, { token: TOKEN });
  await api.listen({ host: '127.0.0.1', port });
  server = ['--server', `http://127.0.0.1:${port}`, '--token', TOKEN];
  const source = await service.store.registries.create({ name: 'source', url: fixture.source.host });
  const destination = await service.store.registries.create({ name: 'destination', url: fixture.destination.host });
  policy = await service.store.policies.create({ name: 'remote', sourceRegistryId: source.id, destinationRegistryId: destination.id });
});

afterAll(async () => {
  await api?.close();
  await service?.close();
  await fixture?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('ferry jobs, executions and policies against a running service', () => {
  it('triggers a policy, lists and shows its execution and job, and prints the job\'s log', async () => {
    expect((await ferry(['policies', 'ls', ...server])).stdout).toMatch(new RegExp(`^${policy.id}\\s+remote\\s+true\\s+manual$`, 'm'));
    const triggered = await ferry(['policies', 'trigger', policy.id, ...server]);
    expect(triggered.code, triggered.stderr).toBe(0);
    const executionId = /^execution (\S+): 1 job\(s\) queued$/m.exec(triggered.stdout)?.[1];
    expect(executionId).toBeDefined();

    let shown = '';
    for (let i = 0; i < 200 && !/finished\s+manual\s+1 finished/.test(shown); i++) {
      shown = (await ferry(['executions', 'show', executionId!, ...server])).stdout;
    }
    expect(shown).toMatch(new RegExp(`^${executionId}\\s+finished\\s+manual\\s+1 finished`, 'm'));
    const jobId = new RegExp(`^(\\S+)\\s+finished\\s+copy\\s+${fixture.destination.host}/team/app\\s+2/2`, 'm').exec(shown)?.[1];
    expect(jobId).toBeDefined();

    const listed = await ferry(['jobs', 'ls', '--execution', executionId!, ...server]);
    expect(listed.stdout).toContain(jobId);
    expect(listed.stdout).toMatch(/^1 of 1 jobs$/m);
    const job = await ferry(['jobs', 'show', jobId!, ...server]);
    expect(job.stdout).toMatch(new RegExp(`^status: finished, attempt 0, node ${service.node}$`, 'm'));
    expect(job.stdout).toMatch(new RegExp(`running\\.pullManifest\\s+finished\\s+xstate\\.done\\.actor\\.pullManifest\\s+${service.node}`));
    const nodes = await ferry(['nodes', 'ls', ...server]);
    expect(nodes.stdout).toMatch(new RegExp(`^${service.node}\\s+\\S+\\s+${process.pid}\\s+.*\\s+0\\s+answering$`, 'm'));
    const logs = await ferry(['jobs', 'logs', jobId!, ...server]);
    expect(logs.stdout).toMatch(/info\s+copied 1\.0$/m);
    expect(logs.stdout).toMatch(/info\s+finished$/m);

    const stop = await ferry(['jobs', 'stop', jobId!, ...server]);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toMatch(/409 job \S+ has already ended/);
  });

  it('reads the token from --token-file, out of sight of ps', async () => {
    const file = join(dir, 'token');
    await writeFile(file, `${TOKEN}\n`, { mode: 0o600 });
    const listed = await ferry(['nodes', 'ls', ...server.slice(0, 2), '--token-file', file]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(service.node);
    const both = await ferry(['nodes', 'ls', ...server, '--token-file', file]);
    expect(both).toMatchObject({ code: 2, stderr: expect.stringContaining('give --token or --token-file, not both') });
  });

  it('says when the token is wrong, and when the server is not there', async () => {
    const refused = await ferry(['jobs', 'ls', ...server.slice(0, 2), '--token', 'wrong']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/GET \/jobs: 401/);
    const absent = await ferry(['jobs', 'ls', '--server', 'http://127.0.0.1:1']);
    expect(absent.code).toBe(1);
    expect(absent.stderr).toContain('cannot reach ferry at http://127.0.0.1:1/api/v1');
  });
});

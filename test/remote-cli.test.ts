import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../src/services/api/app.js';
import { FerryService } from '../src/services/service.js';
import type { Policy, Registry } from '../src/services/store/types.js';
import { once } from 'node:events';
import { collect, ferry, spawnFerry } from './support/ferry.js';
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
    expect(job.stdout).toMatch(new RegExp(`running\\.copying\\s+finished\\s+xstate\\.done\\.actor\\.batch-\\d+\\s+${service.node}`));
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

describe('ferry registries and policies against a running service', () => {
  it('adds, lists and removes registries, and refuses malformed credentials as bad usage', async () => {
    const added = await ferry(['registries', 'add', 'mirror', 'mirror.example.com:5000', '--creds', 'robot:pa55', '--insecure', '--rate', '5', ...server]);
    expect(added.code, added.stderr).toBe(0);
    const id = /^added registry mirror: (\S+)$/m.exec(added.stdout)?.[1];
    expect(await service.store.registries.get(id!)).toMatchObject({ url: 'mirror.example.com:5000', insecure: true, requestsPerSecond: 5 });
    const listed = await ferry(['registries', 'ls', ...server]);
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+mirror\\s+mirror\\.example\\.com:5000\\s+true\\s+robot$`, 'm'));
    expect(listed.stdout).not.toContain('pa55');

    const malformed = await ferry(['registries', 'add', 'other', 'other.example.com', '--creds', 'robot', ...server]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toBe('ferry: --creds must have the form "username:password" (see ferry registries add --help)\n');
    const slow = await ferry(['registries', 'add', 'slow', 'slow.example.com', '--rate', '0', ...server]);
    expect(slow.code).toBe(2);
    expect(slow.stderr).toMatch(/^ferry: POST \/registries: 400 .*requestsPerSecond.* \(see ferry registries add --help\)\n$/);
    const taken = await ferry(['registries', 'add', 'mirror', 'elsewhere.example.com', ...server]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/^ferry: POST \/registries: 409 /);

    const removed = await ferry(['registries', 'rm', 'mirror', ...server]);
    expect(removed.stdout).toBe(`removed: ${id}\n`);
    expect(await service.store.registries.get(id!)).toBeUndefined();
  });

  it('adds a policy naming its registries, triggers it by name, addresses its execution and job by id prefix, and removes it', async () => {
    const added = await ferry(['policies', 'add', 'nightly', '--from', 'source', '--to', 'destination', '--repositories', 'team/**', '--tags', '1.*', '--tags', '!1.9', '--namespace', 'mirror', '--flatten', '0', '--cron', '0 3 * * *', ...server]);
    expect(added.code, added.stderr).toBe(0);
    const id = /^added policy nightly: (\S+)$/m.exec(added.stdout)?.[1];
    const stored = (await service.store.policies.get(id!))!;
    expect(stored).toMatchObject({ enabled: true, trigger: { type: 'cron', schedule: '0 3 * * *' }, repositories: { include: ['team/**'], exclude: [] }, tags: { include: ['1.*'], exclude: ['1.9'] }, rewrite: { namespace: 'mirror', flatten: 0 } });
    expect((await ferry(['policies', 'ls', ...server])).stdout).toMatch(new RegExp(`^${id}\\s+nightly\\s+true\\s+cron 0 3 \\* \\* \\*$`, 'm'));

    const triggered = await ferry(['policies', 'trigger', 'nightly', ...server]);
    expect(triggered.code, triggered.stderr).toBe(0);
    const executionId = /^execution (\S+): 1 job\(s\) queued$/m.exec(triggered.stdout)![1]!;
    const jobId = (await service.store.jobs.list({ executionId })).items[0]!.id;
    // A start of the id, as a person copies it from a table: not whole, so it is looked up.
    let shown = '';
    for (let i = 0; i < 200 && !/^status: finished/m.test(shown); i++) shown = (await ferry(['jobs', 'show', jobId.slice(0, 30), ...server])).stdout;
    expect(shown).toMatch(new RegExp(`^job ${jobId} \\(copy\\) in execution ${executionId}$`, 'm'));
    expect(shown).toContain(`-> ${fixture.destination.host}/mirror/team/app`);
    const execution = await ferry(['executions', 'show', executionId.slice(0, 30), ...server]);
    expect(execution.stdout).toMatch(new RegExp(`^${executionId}\\s+finished\\s+manual\\s+1 finished`, 'm'));
    const byPolicy = await ferry(['executions', 'ls', '--policy', 'nightly', ...server]);
    expect(byPolicy.stdout).toMatch(/^1 of 1 executions$/m);

    const removed = await ferry(['policies', 'rm', id!.slice(0, 23), ...server]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await service.store.policies.get(id!)).toBeUndefined();
    const gone = await ferry(['policies', 'trigger', 'nightly', ...server]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe('ferry: no policy is named or has an id starting with "nightly"\n');
  });

  it('refuses an ambiguous id prefix as bad usage, listing the candidates', async () => {
    const other = await service.store.policies.create({ name: 'other', sourceRegistryId: policy.sourceRegistryId, destinationRegistryId: policy.destinationRegistryId });
    const prefix = commonPrefix(policy.id, other.id);
    expect(prefix.length).toBeGreaterThan(0);
    const result = await ferry(['policies', 'trigger', prefix, ...server]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^ferry: "${prefix}" matches \\d+ policies: .+ \\(see ferry policies trigger --help\\)\n$`));
    expect(result.stderr).toContain(`${policy.id} (remote)`);
    expect(result.stderr).toContain(`${other.id} (other)`);
  });

  it('checks each remote command\'s usage before calling the service', async () => {
    for (const [args, message] of [
      [['policies'], 'policies needs a command: ls, add, rm, trigger (see ferry policies --help)'],
      [['policies', 'add', 'x', '--from', 'source', ...server], "required option '--to <registry>' not specified (see ferry policies add --help)"],
      [['policies', 'add', 'x', '--from', 'source', '--to', 'destination', '--cron', '* * * * *', '--on-push', ...server], 'choose one of --cron and --on-push (see ferry policies add --help)'],
      [['registries', 'rm', ...server], "missing required argument 'registry' (see ferry registries rm --help)"],
      [['jobs', 'ls', '--limit', '0', ...server], '--limit takes a whole number of at least 1, not "0" (see ferry jobs ls --help)'],
      [['jobs', 'show', 'a', 'b', ...server], "too many arguments for 'show'. Expected 1 argument but got 2. (see ferry jobs show --help)"],
    ] as const) {
      const result = await ferry([...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toBe(`ferry: ${message}\n`);
    }
  });

  let proxied: Registry | undefined;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`jobs logs -f ends on ${signal}`, async () => {
      proxied ??= await service.store.registries.create({ name: 'held', url: fixture.sourceProxy.host });
      const held = await service.store.policies.create({ name: `held-${signal}`, sourceRegistryId: proxied.id, destinationRegistryId: policy.destinationRegistryId });
      const listing = fixture.sourceProxy.hold({ method: 'GET', path: /\/tags\/list/ });
      try {
        const { jobs } = await service.scheduler.trigger(held, 'manual');
        await listing.arrived;
        const child = spawnFerry(['jobs', 'logs', '-f', jobs[0]!.id, ...server]);
        const result = collect(child);
        let stdout = '';
        child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        while (!stdout.includes('running')) await once(child.stdout!, 'data');
        const sent = Date.now();
        child.kill(signal);
        const { code } = await result;
        expect(code).toBe(130);
        expect(Date.now() - sent).toBeLessThan(2_000);
        expect((await service.store.jobs.get(jobs[0]!.id))?.status).toBe('running');
      } finally {
        listing.release();
      }
    });
  }
});

function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return a.slice(0, i);
}


import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { collect, spawnFerry } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { freePort } from './support/registry.js';

let fixture: ReplicationFixture;
let stately: WebSocketServer;
let received: Array<{ type?: string }>;
let statelyUrl: string;

beforeAll(async () => {
  fixture = await replicationFixture({ '1.0': { layers: [{ size: 30_000, seed: 'inspect-1' }] } }, 'team/app');
  const port = await freePort();
  // Stands where `ferry stately-inspector` (the @statelyai/inspect bridge) would listen.
  stately = new WebSocketServer({ host: '127.0.0.1', port });
  received = [];
  stately.on('connection', (socket) => socket.on('message', (data) => received.push(JSON.parse(data.toString()) as { type?: string })));
  statelyUrl = `ws://127.0.0.1:${port}`;
});

afterAll(async () => {
  stately?.close();
  await fixture?.stop();
});

describe('ferry copy --inspect', () => {
  it('runs the copy under the console, sends the inspection stream to Stately\'s inspector, and stays up until Ctrl-C', async () => {
    const child = spawnFerry(['copy', `${fixture.source.host}/team/app`, `${fixture.destination.host}/inspected/app`, '--inspect'], { FERRY_INSPECT_URL: statelyUrl });
    const result = collect(child);
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const deadline = Date.now() + 20_000;
    while (!stdout.includes('the console stays up until Ctrl-C')) {
      if (Date.now() > deadline) throw new Error(`no end of the job in the output:\n${stdout}`);
      await Promise.race([once(child.stdout!, 'data'), new Promise((r) => setTimeout(r, 500))]);
    }

    const console = /^console: (http:\/\/127\.0\.0\.1:\d+)\/#\/jobs\/(\S+)$/m.exec(stdout);
    expect(console).not.toBeNull();
    const [, base, jobId] = console!;
    const job = (await (await fetch(`${base}/api/v1/jobs/${jobId}`)).json()) as { status: string; history: Array<{ to: string }> };
    expect(job.status).toBe('finished');
    expect(job.history.map((t) => t.to)).toContain('running.copying');
    expect((await fetch(`${base}/`)).headers.get('content-type')).toMatch(/^text\/html/);
    expect(received.some((event) => event.type === '@xstate.snapshot')).toBe(true);

    child.kill('SIGINT');
    const ended = await result;
    expect(ended.code, ended.stderr).toBe(0);
  });
});

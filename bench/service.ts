import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { freePort } from '../test/support/registry.js';
import { FERRY_CLI, outputTail } from './process.js';

const READY_TIMEOUT_MS = 15_000;
const POLL_MS = 20;

export interface PolicyRequest {
  name: string;
  repository: string;
  /** Where the repository goes on the destination: `namespace/repository`. */
  namespace: string;
  tags?: string[];
}

/** A `ferry serve` process with the source and destination registries registered. */
export interface FerryServer {
  pid: number;
  createPolicy(policy: PolicyRequest): Promise<string>;
  /** Triggers the policy and resolves once its execution finished. */
  runPolicy(id: string): Promise<void>;
  /** At once, for a signal handler; `stop` also waits for the process to end. */
  kill(): void;
  stop(): Promise<void>;
}

export async function startFerryServer(dir: string, sourceHost: string, destinationHost: string): Promise<FerryServer> {
  const port = await freePort();
  const child = spawn(process.execPath, [FERRY_CLI, 'serve', '--db', join(dir, 'ferry.db'), '--port', String(port), '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = outputTail(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const stop = async (): Promise<void> => {
    kill();
    await exited;
  };

  const api = async <T>(method: 'GET' | 'POST', path: string, body?: object): Promise<T> => {
    const response = await request(`http://127.0.0.1:${port}/api/v1${path}`, {
      method,
      ...(body && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await response.body.text();
    if (response.statusCode >= 300) throw new Error(`ferry serve: ${method} ${path}: ${response.statusCode} ${text}`);
    return JSON.parse(text) as T;
  };

  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`ferry serve exited with ${child.exitCode}:\n${output()}`);
      if (Date.now() > deadline) throw new Error(`ferry serve not ready after ${READY_TIMEOUT_MS} ms:\n${output()}`);
      if (await api('GET', '/registries').then(() => true, () => false)) break;
      await sleep(50);
    }
    const [source, destination] = await Promise.all(
      [['source', sourceHost], ['destination', destinationHost]].map(([name, url]) => api<{ id: string }>('POST', '/registries', { name, url })),
    );
    return {
      async createPolicy({ name, repository, namespace, tags }) {
        const policy = await api<{ id: string }>('POST', '/policies', {
          name,
          sourceRegistryId: source!.id,
          destinationRegistryId: destination!.id,
          repositories: { include: [repository], exclude: [] },
          ...(tags && { tags: { include: tags, exclude: [], syntax: 'glob' } }),
          rewrite: { namespace, flatten: 0 },
        });
        return policy.id;
      },
      async runPolicy(id) {
        const { execution } = await api<{ execution: { id: string } }>('POST', `/policies/${id}/trigger`);
        for (;;) {
          const now = await api<{ status: string }>('GET', `/executions/${execution.id}`);
          if (now.status === 'finished') return;
          if (now.status !== 'pending' && now.status !== 'running') throw new Error(`execution ${execution.id}: ${JSON.stringify(now)}`);
          await sleep(POLL_MS);
        }
      },
      pid: child.pid!,
      kill,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

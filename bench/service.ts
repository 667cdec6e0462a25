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
  /** Where the repository goes on the destination: `namespace/repository` (left out: the same path). */
  namespace?: string;
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

export interface ServerOptions {
  /** A SQLite file or a postgres:// URL. */
  database: string;
  /** The registries to add, unless another node on the database has added them. */
  register?: { source: string; destination: string };
  workers?: number;
}

/** A `ferry serve` on `dir/ferry.db` with the two registries registered. */
export function startFerryServer(dir: string, sourceHost: string, destinationHost: string): Promise<FerryServer> {
  return startFerryNode({ database: join(dir, 'ferry.db'), register: { source: sourceHost, destination: destinationHost } });
}

export async function startFerryNode(options: ServerOptions): Promise<FerryServer> {
  const port = await freePort();
  const args = ['serve', '--db', options.database, '--port', String(port), '--log-format', 'json', ...(options.workers ? ['--workers', String(options.workers)] : [])];
  const child = spawn(process.execPath, [FERRY_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
    if (options.register) {
      await Promise.all(Object.entries(options.register).map(([name, url]) => api('POST', '/registries', { name, url })));
    }
    const registryId = async (name: string) => (await api<{ items: Array<{ id: string; name: string }> }>('GET', '/registries')).items.find((r) => r.name === name)!.id;
    return {
      async createPolicy({ name, repository, namespace, tags }) {
        const policy = await api<{ id: string }>('POST', '/policies', {
          name,
          sourceRegistryId: await registryId('source'),
          destinationRegistryId: await registryId('destination'),
          repositories: { include: [repository], exclude: [] },
          ...(tags && { tags: { include: tags, exclude: [], syntax: 'glob' } }),
          ...(namespace && { rewrite: { namespace, flatten: 0 } }),
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

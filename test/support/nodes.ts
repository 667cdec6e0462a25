import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { atExit } from './cleanup.js';
import { spawnFerry } from './ferry.js';
import { freePort } from './registry.js';

/** One `ferry serve` process of a test's cluster. */
export interface FerryNode {
  /** Its place in the order the test started nodes, for messages: `node 2`. */
  name: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  pid: number;
  /** The node id it reports at /healthz (what jobs, histories and /api/v1/nodes name). */
  id: string;
  /** Its stdout and stderr so far (JSON log lines on stdout). */
  output(): string;
  /** Its log records (`--log-format json`), parsed. */
  logs(): LogRecord[];
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The process has not exited (yet). */
  alive(): boolean;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM (a drain), then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** A request to `/api/v1<path>`, JSON in and out. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>>;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

export interface LogRecord {
  level: number;
  msg: string;
  jobId?: string;
  [field: string]: unknown;
}

export interface NodeOptions {
  /** A `postgres://` URL every node shares. */
  db: string;
  /** `--lease` in seconds (default 3: takeovers within a few seconds). */
  leaseSeconds?: number;
  workers?: number;
  /** `--config ferry.yaml`. */
  config?: string;
  env?: NodeJS.ProcessEnv;
}

const READY_TIMEOUT_MS = 30_000;
const OUTPUT_LIMIT = 4 * 1024 * 1024;

const live = new Set<ChildProcess>();

/** Nodes a test never stopped (a failure, a timeout) are killed when the test process ends. */
function killLive(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** Starts one node on `options.db` and waits until it answers /healthz. */
export async function startNode(name: string, options: NodeOptions): Promise<FerryNode> {
  atExit(killLive);
  const port = await freePort();
  const args = ['serve', '--db', options.db, '--port', String(port), '--lease', String(options.leaseSeconds ?? 3), '--workers', String(options.workers ?? 2), '--log-format', 'json'];
  if (options.config) args.push('--config', options.config);
  const child = spawnFerry(args, options.env);
  live.add(child);
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const url = `http://127.0.0.1:${port}`;
  let gone: string | undefined;
  void exited.then(({ code, signal }) => (gone = `exited (${signal ?? `code ${code}`})`));

  let id: string | undefined;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (id === undefined) {
    if (gone) throw new Error(`${name} ${gone} before it was ready:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} not ready after ${READY_TIMEOUT_MS} ms:\n${output}`);
    }
    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
    if (health?.ok) id = ((await health.json()) as { node: string }).node;
    else await sleep(50);
  }

  const node: FerryNode = {
    name,
    url,
    pid: child.pid!,
    id,
    output: () => output,
    logs: () =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as LogRecord];
          } catch {
            return [];
          }
        }),
    exited,
    alive: () => gone === undefined,
    kill: (signal) => void child.kill(signal),
    stop: async (graceMs = 15_000) => {
      if (gone) return exited;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    api: async <T>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> => {
      const response = await fetch(`${url}/api/v1${path}`, {
        method,
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
    },
  };
  return node;
}

/** `count` nodes on one database, started together. */
export async function startNodes(count: number, options: NodeOptions, first = 1): Promise<FerryNode[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => startNode(`node ${first + i}`, options)));
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((node) => node.stop(1_000)));
    throw failed.reason;
  }
  return nodes;
}

/** The last lines of each node's output, for a failure message. */
export function nodeOutputs(nodes: FerryNode[], lines = 40): string {
  return nodes.map((node) => `--- ${node.name} (${node.id}, pid ${node.pid}) ---\n${node.output().split('\n').slice(-lines).join('\n')}`).join('\n');
}

/** One Server-Sent Event as `GET /api/v1/events` sends it. */
export interface ServerEvent {
  id?: number;
  event: string;
  data: unknown;
}

export interface EventStream {
  /** Every event so far, in order. */
  events: ServerEvent[];
  /** Resolves with the first event so far or to come that matches. */
  next(match: (event: ServerEvent) => boolean, timeoutMs?: number): Promise<ServerEvent>;
  close(): void;
}

/** Follows a node's `/api/v1/events`, from `lastEventId` when given. */
export async function openEvents(node: FerryNode, lastEventId?: number): Promise<EventStream> {
  const controller = new AbortController();
  const response = await fetch(`${node.url}/api/v1/events`, {
    headers: lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) },
    signal: controller.signal,
  });
  if (response.status !== 200 || !response.body) throw new Error(`GET /api/v1/events on ${node.name}: ${response.status}`);
  const events: ServerEvent[] = [];
  const waiting = new Set<() => void>();
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = new Map(block.split('\n').filter((line) => !line.startsWith(':')).map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trimStart()]));
          if (!fields.has('data')) continue;
          const id = fields.get('id');
          events.push({ ...(id === undefined ? {} : { id: Number(id) }), event: fields.get('event') ?? 'message', data: JSON.parse(fields.get('data')!) });
          for (const wake of waiting) wake();
        }
      }
    } catch {
      // closed
    }
  })();
  return {
    events,
    next: (match, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const look = () => {
          const found = events.find(match);
          if (!found) return false;
          waiting.delete(look);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiting.delete(look);
          reject(new Error(`no such event from ${node.name} within ${timeoutMs} ms; got ${JSON.stringify(events)}`));
        }, timeoutMs);
        if (!look()) waiting.add(look);
      }),
    close: () => controller.abort(),
  };
}

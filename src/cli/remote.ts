import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { ENDED_STATUSES } from '../machines/status.js';
import type { Execution, Job, JobLogEntry, Node, Policy, Transition } from '../services/store/types.js';
import { formatBytes } from './format.js';
import { apiToken } from './secrets.js';
import type { CommandIO } from './io.js';
import { table } from './table.js';
import { positiveInteger, UsageError } from './usage.js';

export const REMOTE_USAGE = `Usage: ferry <jobs|executions|policies|nodes> <action> [ID] [options]

Talks to a running ferry serve.
  ferry jobs ls [--execution ID] [--status S] [--limit N]
  ferry jobs show ID | stop ID | retry ID | logs ID [--follow]
  ferry executions ls [--policy ID] [--status S] [--limit N]
  ferry executions show ID | stop ID | retry ID
  ferry policies ls | trigger ID
  ferry nodes ls                 the ferry serve processes on the service's database

Options:
  --server URL    the service (default http://127.0.0.1:8080, or FERRY_SERVER)
  --token TOKEN   API token (or FERRY_API_TOKEN)
  --token-file F  the token read from a file, out of sight of ps`;

/** A failure the server reported: exit code 1 with its message. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
}

export async function remoteCommand(resource: string, argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      server: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      execution: { type: 'string' },
      policy: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
    },
  });
  const [action, id, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const api = new Api(values.server ?? io.env.FERRY_SERVER ?? 'http://127.0.0.1:8080', await apiToken(values, io.env));
  const out = (text: string) => io.stdout.write(text);
  const needId = () => {
    if (!id) throw new UsageError(`${resource} ${action} needs an ID`);
    return encodeURIComponent(id);
  };
  const query = (params: Record<string, string | undefined>) => {
    const search = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined));
    return search.size > 0 ? `?${search}` : '';
  };
  const limit = values.limit === undefined ? undefined : String(positiveInteger(values.limit, '--limit', 50));

  switch (`${resource} ${action}`) {
    case 'jobs ls': {
      const page = await api.get<{ items: Job[]; total: number }>(`/jobs${query({ executionId: values.execution, status: values.status, limit })}`);
      out(table(['ID', 'STATUS', 'PHASE', 'OPERATION', 'DESTINATION', 'TAGS', 'BYTES'], page.items.map(jobRow)));
      out(`${page.items.length} of ${page.total} jobs\n`);
      return 0;
    }
    case 'jobs show': {
      const job = await api.get<Job & { history: Transition[] }>(`/jobs/${needId()}`);
      out(`${describeJob(job)}\nhistory:\n${table(['AT', 'FROM', 'TO', 'EVENT', 'NODE'], job.history.map((t) => [t.at, t.from ?? '', t.to, t.event, t.node ?? '']))}`);
      return 0;
    }
    case 'jobs stop':
    case 'jobs retry':
    case 'executions stop':
    case 'executions retry': {
      await api.post(`/${resource}/${needId()}/${action}`);
      out(`${action === 'stop' ? 'stopped' : 'queued again'}: ${id}\n`);
      return 0;
    }
    case 'jobs logs': {
      let after = 0;
      for (;;) {
        const entries = await api.get<JobLogEntry[]>(`/jobs/${needId()}/logs${query({ after: String(after) })}`);
        for (const entry of entries) out(`${entry.at} ${entry.level.padEnd(5)} ${entry.message}\n`);
        after = entries.at(-1)?.seq ?? after;
        // The log comes a page at a time: without --follow, until a page is empty.
        if (!values.follow) {
          if (entries.length === 0) return 0;
          continue;
        }
        const job = await api.get<Job>(`/jobs/${needId()}`);
        if (ENDED_STATUSES.has(job.status) && entries.length === 0) return 0;
        await sleep(1000);
      }
    }
    case 'executions ls': {
      const page = await api.get<{ items: Execution[]; total: number }>(`/executions${query({ policyId: values.policy, status: values.status, limit })}`);
      out(table(['ID', 'STATUS', 'TRIGGER', 'JOBS', 'CREATED'], page.items.map(executionRow)));
      out(`${page.items.length} of ${page.total} executions\n`);
      return 0;
    }
    case 'executions show': {
      const execution = await api.get<Execution>(`/executions/${needId()}`);
      const jobs = await api.get<{ items: Job[] }>(`/jobs${query({ executionId: execution.id, limit: '1000' })}`);
      out(table(['ID', 'STATUS', 'TRIGGER', 'JOBS', 'CREATED'], [executionRow(execution)]));
      out(`\n${table(['ID', 'STATUS', 'PHASE', 'OPERATION', 'DESTINATION', 'TAGS', 'BYTES'], jobs.items.map(jobRow))}`);
      return 0;
    }
    case 'policies ls': {
      const { items: policies } = await api.get<{ items: Policy[] }>('/policies?limit=1000');
      out(table(['ID', 'NAME', 'ENABLED', 'TRIGGER'], policies.map((p) => [p.id, p.name, String(p.enabled), p.trigger.type === 'cron' ? `cron ${p.trigger.schedule}` : p.trigger.type])));
      return 0;
    }
    case 'nodes ls': {
      const { self, items } = await api.get<{ self: string; items: Node[] }>('/nodes?limit=1000');
      out(table(['ID', 'HOST', 'PID', 'STARTED', 'HEARTBEAT', 'JOBS', ''], items.map((n) => [n.id, n.host, String(n.pid), n.startedAt, n.heartbeatAt, String(n.jobsHeld), [n.id === self ? 'answering' : '', n.draining ? 'draining' : ''].filter(Boolean).join(', ')])));
      return 0;
    }
    case 'policies trigger': {
      const { execution } = await api.post<{ execution: Execution }>(`/policies/${needId()}/trigger`);
      out(`execution ${execution.id}: ${Object.values(execution.jobs).reduce((sum, count) => sum + count, 0)} job(s) queued\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown action "${action ?? ''}" for ${resource}`);
  }
}

function jobRow(job: Job): string[] {
  const p = job.progress;
  const tags = job.operation === 'copy' ? `${(p.tagsCopied ?? 0) + (p.tagsUnchanged ?? 0)}/${p.tagsTotal ?? 0}` : `${p.tagsDeleted ?? 0}/${p.tagsTotal ?? 0}`;
  return [job.id, job.status, job.phase ?? '', job.operation, job.destination, tags, formatBytes(p.bytesCopied ?? 0)];
}

function executionRow(e: Execution): string[] {
  const counts = Object.entries(e.jobs).filter(([, n]) => n > 0).map(([status, n]) => `${n} ${status}`).join(', ');
  return [e.id, e.status, e.trigger, counts || '0', e.createdAt];
}

function describeJob(job: Job): string {
  const lines = [
    `job ${job.id} (${job.operation}) in execution ${job.executionId}`,
    `status: ${job.status}${job.phase ? ` (${job.phase})` : ''}, attempt ${job.attempt}${job.node ? `, node ${job.node}` : ''}`,
    `${job.source ? `${job.source} -> ` : ''}${job.destination}`,
    `progress: ${Object.entries(job.progress).map(([k, v]) => `${k} ${k.startsWith('bytes') ? formatBytes(v) : v}`).join(', ') || 'none yet'}`,
  ];
  if (job.error) lines.push(`error: ${job.error.message}`);
  return lines.join('\n');
}

class Api {
  readonly #base: string;
  readonly #token: string | undefined;

  constructor(server: string, token: string | undefined) {
    this.#base = `${server.replace(/\/$/, '')}/api/v1`;
    this.#token = token;
  }

  get<T>(path: string): Promise<T> {
    return this.#call<T>('GET', path);
  }

  post<T = unknown>(path: string): Promise<T> {
    return this.#call<T>('POST', path);
  }

  async #call<T>(method: 'GET' | 'POST', path: string): Promise<T> {
    const headers: Record<string, string> = this.#token ? { authorization: `Bearer ${this.#token}` } : {};
    if (method === 'POST') headers['content-type'] = 'application/json';
    let response;
    try {
      response = await request(`${this.#base}${path}`, { method, headers, ...(method === 'POST' ? { body: '{}' } : {}) });
    } catch (error) {
      throw new RemoteError(`cannot reach ferry at ${this.#base}: ${(error as Error).message}`);
    }
    const body = (await response.body.json().catch(() => undefined)) as { message?: string } | undefined;
    if (response.statusCode >= 400) throw new RemoteError(`${method} ${path}: ${response.statusCode} ${body?.message ?? ''}`.trim());
    return body as T;
  }
}

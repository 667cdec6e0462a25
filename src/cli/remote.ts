import { apiToken } from './secrets.js';
import type { Command } from 'commander';
import { ENDED_STATUSES } from '../machines/status.js';
import type { Execution, Job, JobLogEntry, Node, Transition } from '../services/store/types.js';
import { Api } from './api-client.js';
import { formatBytes } from './format.js';
import type { CommandIO } from './io.js';
import { resolveId } from './lookup.js';
import { table } from './table.js';
import { positiveInteger } from './usage.js';

interface Connection {
  server?: string;
  token?: string;
  tokenFile?: string;
}

export async function connect(command: Command, io: CommandIO): Promise<{ api: Api; out: (text: string) => void }> {
  const { server, ...token } = command.opts<Connection>();
  return { api: new Api(server ?? io.env.FERRY_SERVER ?? 'http://127.0.0.1:8080', await apiToken(token, io.env)), out: (text) => io.stdout.write(text) };
}

export function query(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined));
  return search.size > 0 ? `?${search}` : '';
}

function limit(value: string | undefined): string | undefined {
  return value === undefined ? undefined : String(positiveInteger(value, '--limit', 50));
}

const JOB_HEADERS = ['ID', 'STATUS', 'PHASE', 'OPERATION', 'DESTINATION', 'TAGS', 'BYTES'] as const;
const EXECUTION_HEADERS = ['ID', 'STATUS', 'TRIGGER', 'JOBS', 'CREATED'] as const;

const LISTINGS = {
  jobs: { filter: { option: 'execution', param: 'executionId', of: 'executions' }, headers: JOB_HEADERS, row: jobRow },
  executions: { filter: { option: 'policy', param: 'policyId', of: 'policies' }, headers: EXECUTION_HEADERS, row: executionRow },
} as const;

/** `jobs ls`, `executions ls`: a page, filtered by what they belong to (given as a person gives it) and status. */
export async function list(command: Command, io: CommandIO, resource: keyof typeof LISTINGS): Promise<number> {
  const { api, out } = await connect(command, io);
  const { filter, headers, row } = LISTINGS[resource];
  const opts = command.opts<Record<string, string | undefined>>();
  const owner = opts[filter.option] === undefined ? undefined : await resolveId(api, filter.of, opts[filter.option]!);
  const page = await api.get<{ items: Array<Job & Execution>; total: number }>(`/${resource}${query({ [filter.param]: owner, status: opts.status, limit: limit(opts.limit) })}`);
  out(table([...headers], page.items.map(row)));
  out(`${page.items.length} of ${page.total} ${resource}\n`);
  return 0;
}

export async function showJob(command: Command, io: CommandIO): Promise<number> {
  const { api, out } = await connect(command, io);
  const job = await api.get<Job & { history: Transition[] }>(`/jobs/${await resolveId(api, 'jobs', command.args[0]!)}`);
  out(`${describeJob(job)}\nhistory:\n${table(['AT', 'FROM', 'TO', 'EVENT', 'NODE'], job.history.map((t) => [t.at, t.from ?? '', t.to, t.event, t.node ?? '']))}`);
  return 0;
}

/** `jobs stop|retry`, `executions stop|retry`. */
export async function act(command: Command, io: CommandIO, resource: 'jobs' | 'executions', action: 'stop' | 'retry'): Promise<number> {
  const { api, out } = await connect(command, io);
  const id = await resolveId(api, resource, command.args[0]!);
  await api.post(`/${resource}/${id}/${action}`);
  out(`${action === 'stop' ? 'stopped' : 'queued again'}: ${id}\n`);
  return 0;
}

/** With --follow, polls until the job has ended and its log is read, or the user stops it (exit 130). */
export async function jobLogs(command: Command, io: CommandIO): Promise<number> {
  const { api, out } = await connect(command, io);
  const id = await resolveId(api, 'jobs', command.args[0]!);
  const follow = command.opts<{ follow?: boolean }>().follow ?? false;
  let interrupted = false;
  void io.interrupted.then(() => (interrupted = true));
  let after = 0;
  for (;;) {
    const entries = await api.get<JobLogEntry[]>(`/jobs/${id}/logs${query({ after: String(after) })}`);
    for (const entry of entries) out(`${entry.at} ${entry.level.padEnd(5)} ${entry.message}\n`);
    after = entries.at(-1)?.seq ?? after;
    // The API answers a page at a time: read on until a page comes back empty.
    if (entries.length > 0 && !interrupted) continue;
    if (!follow) return 0;
    const job = await api.get<Job>(`/jobs/${id}`);
    if (ENDED_STATUSES.has(job.status)) return 0;
    await pause(1000, io.interrupted);
    if (interrupted) return 130;
  }
}

/** Resolves after `ms`, or as soon as the user stops the command: its timer must not hold the process up then. */
function pause(ms: number, interrupted: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void interrupted.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export async function showExecution(command: Command, io: CommandIO): Promise<number> {
  const { api, out } = await connect(command, io);
  const execution = await api.get<Execution>(`/executions/${await resolveId(api, 'executions', command.args[0]!)}`);
  const jobs = await api.all<Job>(`/jobs${query({ executionId: execution.id })}`);
  out(table([...EXECUTION_HEADERS], [executionRow(execution)]));
  out(`\n${table([...JOB_HEADERS], jobs.map(jobRow))}`);
  return 0;
}

export async function listNodes(command: Command, io: CommandIO): Promise<number> {
  const { api, out } = await connect(command, io);
  const { self, items } = await api.get<{ self: string; items: Node[] }>('/nodes');
  out(table(['ID', 'HOST', 'PID', 'STARTED', 'HEARTBEAT', 'JOBS', ''], items.map((n) => [n.id, n.host, String(n.pid), n.startedAt, n.heartbeatAt, String(n.jobsHeld), [n.id === self ? 'answering' : '', n.draining ? 'draining' : ''].filter(Boolean).join(', ')])));
  return 0;
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

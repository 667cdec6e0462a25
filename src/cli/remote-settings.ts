import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { split } from '../services/registry/credentials.js';
import type { Execution, Job, Policy, Registry } from '../services/store/types.js';
import type { CommandIO } from './io.js';
import { resolveId } from './lookup.js';
import { connect } from './remote.js';
import { table } from './table.js';
import { UsageError } from './usage.js';

export async function listPolicies(command: Command, io: CommandIO): Promise<number> {
  const { api, out } = await connect(command, io);
  const policies = await api.all<Policy>('/policies');
  out(table(['ID', 'NAME', 'ENABLED', 'TRIGGER'], policies.map((p) => [p.id, p.name, String(p.enabled), p.trigger.type === 'cron' ? `cron ${p.trigger.schedule}` : p.trigger.type])));
  return 0;
}

interface PolicyOptions {
  from: string;
  to: string;
  repositories?: string[];
  tags?: string[];
  namespace?: string;
  flatten?: string;
  platform?: string[];
  cron?: string;
  onPush?: boolean;
  disabled?: boolean;
}

export async function addPolicy(command: Command, io: CommandIO): Promise<number> {
  const { api, out } = await connect(command, io);
  const opts = command.opts<PolicyOptions>();
  if (opts.cron !== undefined && opts.onPush) throw new UsageError('choose one of --cron and --on-push');
  if (opts.namespace !== undefined && opts.flatten === undefined) throw new UsageError('--namespace needs --flatten N too (0 keeps the whole path)');
  const flatten = opts.flatten === undefined ? undefined : Number(opts.flatten);
  if (flatten !== undefined && !Number.isSafeInteger(flatten)) throw new UsageError(`--flatten takes a whole number, not "${opts.flatten}"`);
  const policy = await api.post<Policy>('/policies', {
    name: command.args[0],
    sourceRegistryId: await resolveId(api, 'registries', opts.from),
    destinationRegistryId: await resolveId(api, 'registries', opts.to),
    enabled: !opts.disabled,
    ...(opts.repositories ? { repositories: globs(opts.repositories) } : {}),
    ...(opts.tags ? { tags: globs(opts.tags) } : {}),
    ...(flatten !== undefined ? { rewrite: { namespace: opts.namespace ?? null, flatten } } : {}),
    ...(opts.platform ? { platforms: opts.platform.flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean) } : {}),
    trigger: opts.cron !== undefined ? { type: 'cron', schedule: opts.cron } : { type: opts.onPush ? 'event' : 'manual' },
  });
  out(`added policy ${policy.name}: ${policy.id}\n`);
  return 0;
}

/** `--tags a --tags '!b'` as the API's include and exclude lists. */
function globs(values: string[]): { include: string[]; exclude: string[] } {
  return { include: values.filter((v) => !v.startsWith('!')), exclude: values.filter((v) => v.startsWith('!')).map((v) => v.slice(1)) };
}

export async function remove(command: Command, io: CommandIO, resource: 'policies' | 'registries'): Promise<number> {
  const { api, out } = await connect(command, io);
  const id = await resolveId(api, resource, command.args[0]!);
  await api.delete(`/${resource}/${id}`);
  out(`removed: ${id}\n`);
  return 0;
}

export async function triggerPolicy(command: Command, io: CommandIO): Promise<number> {
  const { api, out } = await connect(command, io);
  const { execution, jobs } = await api.post<{ execution: Execution; jobs: Job[] }>(`/policies/${await resolveId(api, 'policies', command.args[0]!)}/trigger`);
  out(`execution ${execution.id}: ${jobs.length} job(s) queued\n`);
  return 0;
}

export async function listRegistries(command: Command, io: CommandIO): Promise<number> {
  const { api, out } = await connect(command, io);
  const registries = await api.all<Registry>('/registries');
  const login = (r: Registry) => (r.credentialHelper ? `helper ${r.credentialHelper}` : r.username ?? (r.hasCredentials ? 'yes' : ''));
  out(table(['ID', 'NAME', 'URL', 'INSECURE', 'LOGIN'], registries.map((r) => [r.id, r.name, r.url, String(r.insecure), login(r)])));
  return 0;
}

interface RegistryOptions {
  creds?: string;
  credentialHelper?: string;
  insecure?: boolean;
  ca?: string;
  rate?: string;
}

export async function addRegistry(command: Command, io: CommandIO): Promise<number> {
  const { api, out } = await connect(command, io);
  const opts = command.opts<RegistryOptions>();
  if (opts.creds !== undefined && opts.credentialHelper !== undefined) throw new UsageError('choose one of --creds and --credential-helper');
  const [name, url] = command.args;
  const registry = await api.post<Registry>('/registries', {
    name,
    url,
    insecure: opts.insecure ?? false,
    ...(opts.creds !== undefined ? { credentials: split(opts.creds, '--creds') } : {}),
    ...(opts.credentialHelper !== undefined ? { credentialHelper: opts.credentialHelper } : {}),
    ...(opts.ca !== undefined ? { ca: await readCa(opts.ca) } : {}),
    ...(opts.rate !== undefined ? { requestsPerSecond: rate(opts.rate) } : {}),
  });
  out(`added registry ${registry.name}: ${registry.id}\n`);
  return 0;
}

/** A number for the service to check: what is not one at all is refused here. */
function rate(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number)) throw new UsageError(`--rate takes a number of requests per second, not "${value}"`);
  return number;
}

async function readCa(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--ca: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

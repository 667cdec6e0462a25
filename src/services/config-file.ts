import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { InvalidInputError } from './domain/errors.js';
import { checkPolicySettings, POLICY_DEFAULTS, type PolicySettings, type PolicySettingsDraft, type TriggerInput } from './domain/policy.js';
import { checkRegistryPatch, type RegistrySettings } from './domain/registry.js';
import { RegistryError } from './registry/errors.js';
import type { Settings } from './application/settings.js';
import type { NamespaceRewrite, Policy, ReferrerSelection, Registry, RegistryInput, SignatureRequirement, Store } from './store/types.js';
import type { Filter, LatestFilter, SemverFilter, TagFilter } from './tag-filter.js';

/**
 * `ferry.yaml`: registries and policies as code. Each is matched by name and created or
 * updated at start-up (an entry changes what it gives; what it leaves out keeps its stored
 * value, or the default); `${VAR}` in a string is read from the environment (for passwords).
 * This module reads the file's structure; the domain module has the rules for the values.
 *
 *   registries:
 *     - name: upstream
 *       url: registry.example.com
 *       credentials: { username: robot, password: ${UPSTREAM_PASSWORD} }
 *       requestsPerSecond: 5                    # each node's ceiling; 429s slow it down further
 *     - name: ecr
 *       url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com
 *       credentialHelper: ecr-login                  # docker-credential-ecr-login, at each connect
 *   policies:
 *     - name: mirror-team
 *       source: upstream
 *       destination: local
 *       repositories: { include: ["team/**"] }
 *       tags: { include: ["v*"], exclude: ["*-rc*"] }
 *       # or: tags: { semver: ">=1.2 <2", latest: 3 }  (latest: { count: 3, by: created })
 *       rewrite: { namespace: mirror, flatten: 1 }
 *       trigger: { type: cron, schedule: "0 * * * *" }
 *       referrers: [application/spdx+json]      # or all (the default), or none
 *       requireSignature: ./cosign.pub          # relative to this file, read at load time
 */
export interface ConfigFile {
  /** Where it was read from, for messages. */
  path: string;
  /** `ca` holds what `caFile` names. */
  registries: Array<RegistryInput & { caFile?: string }>;
  /** Registries by name, as the file has them; `requireSignature` holds the key `requireSignatureFile` names. */
  policies: Array<PolicySettingsDraft & { source: string; destination: string; requireSignatureFile?: string }>;
}

/** What an entry gives, checked (every entry gives its name, and a registry its URL). */
type CheckedRegistry = Partial<RegistrySettings> & Pick<RegistrySettings, 'name' | 'url'>;
type CheckedPolicy = Partial<PolicySettings> & Pick<PolicySettings, 'name'> & { source: string; destination: string };

export async function readConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw invalid(path, `cannot be read (${unreadable(error)})`);
  }
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw invalid(path, `is not YAML: ${(error as Error).message}`);
  }
  const config = checkConfig(path, expand(path, document ?? {}, env));
  for (const registry of config.registries) {
    if (registry.caFile) registry.ca = await readFile(resolve(dirname(path), registry.caFile), 'utf8');
  }
  for (const policy of config.policies) {
    if (policy.requireSignatureFile) policy.requireSignature = await signingKeyFile(path, policy.name, policy.requireSignatureFile);
  }
  return config;
}

/** Read at load time: the policy keeps the key itself, and names the file it came from in messages. */
async function signingKeyFile(path: string, policy: string, file: string): Promise<SignatureRequirement> {
  const source = resolve(dirname(path), file);
  try {
    return { key: await readFile(source, 'utf8'), source };
  } catch (error) {
    throw invalid(path, `policy ${policy}: requireSignature ${source} cannot be read (${unreadable(error)})`);
  }
}

function unreadable(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/**
 * Creates or updates each registry and policy by name; returns what was applied. The whole
 * file is checked first, so a file with an invalid entry changes nothing.
 */
export async function applyConfig(store: Store, settings: Settings, config: ConfigFile): Promise<{ registries: Registry[]; policies: Policy[] }> {
  const checked = await checkEntries(store, config);
  const registries: Registry[] = [];
  for (const registry of checked.registries) registries.push(await settings.saveRegistry(registry));
  // Every name a policy gives is now stored: checkEntries found it in the file or the store.
  const registryIds = new Map((await store.registries.list()).items.map((registry) => [registry.name, registry.id]));
  const policies: Policy[] = [];
  for (const { source, destination, ...policy } of checked.policies) {
    policies.push(await settings.savePolicy({ ...policy, sourceRegistryId: registryIds.get(source)!, destinationRegistryId: registryIds.get(destination)! }));
  }
  return { registries, policies };
}

/** Every entry by the domain rules, and every registry a policy names either in the file or stored. */
async function checkEntries(store: Store, config: ConfigFile): Promise<{ registries: CheckedRegistry[]; policies: CheckedPolicy[] }> {
  const { path } = config;
  distinct(path, 'registry', config.registries.map((r) => r.name));
  distinct(path, 'registry URL', config.registries.map((r) => r.url));
  distinct(path, 'policy', config.policies.map((p) => p.name));
  const registries = config.registries.map(({ caFile, ...input }): CheckedRegistry => {
    // The file gives a CA as the path of a file, which is what its messages name.
    const fileNames: Record<string, string> = caFile === undefined ? {} : { ca: `caFile ${JSON.stringify(caFile)}` };
    const checked = inEntry(path, `registry ${input.name}`, () => checkRegistryPatch(input), fileNames);
    return { ...checked, name: input.name, url: input.url };
  });
  const known = new Set([...registries.map((r) => r.name), ...(await store.registries.list()).items.map((r) => r.name)]);
  const policies = config.policies.map(({ source, destination, ...settings }): CheckedPolicy => {
    for (const [field, name] of [['source', source], ['destination', destination]] as const) {
      if (!known.has(name)) throw invalid(path, `policy ${settings.name}: ${field} names registry "${name}", which is not configured`);
    }
    return { ...inEntry(path, `policy ${settings.name}`, () => checkPolicySettings(settings)), name: settings.name, source, destination };
  });
  return { registries, policies };
}

/**
 * Entries are matched by name, so a second entry of one name would overwrite the first; and
 * the store refuses a second registry of one URL, which it would only do half-way through.
 */
function distinct(path: string, what: string, values: string[]): void {
  const twice = values.find((value, i) => values.indexOf(value) !== i);
  if (twice !== undefined) throw invalid(path, `${what} ${twice} is listed twice`);
}

/** A domain rule broken by an entry, said in the file's terms: which entry, and the setting as the file names it. */
function inEntry<T>(path: string, entry: string, check: () => T, fileNames: Record<string, string> = {}): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    throw invalid(path, `${entry}: ${fileNames[error.field] ?? error.field} ${error.problem}`);
  }
}

function expand(path: string, value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const found = env[name];
      if (found === undefined) throw invalid(path, `uses \${${name}}, which is not set in the environment`);
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item) => expand(path, item, env));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, expand(path, item, env)]));
  }
  return value;
}

function checkConfig(path: string, document: unknown): ConfigFile {
  const root = object(path, document, '');
  only(path, root, '', ['registries', 'policies']);
  const registries = list(path, root.registries, 'registries').map((item, i) => registryEntry(path, item, `registries[${i}]`));
  const policies = list(path, root.policies, 'policies').map((item, i) => policyEntry(path, item, `policies[${i}]`));
  return { path, registries, policies };
}

function registryEntry(path: string, value: unknown, at: string): ConfigFile['registries'][number] {
  const o = object(path, value, at);
  only(path, o, at, ['name', 'url', 'insecure', 'credentials', 'credentialHelper', 'caFile', 'requestsPerSecond']);
  const registry: ConfigFile['registries'][number] = { name: string(path, o.name, `${at}.name`), url: string(path, o.url, `${at}.url`) };
  if (o.insecure !== undefined) registry.insecure = boolean(path, o.insecure, `${at}.insecure`);
  if (o.caFile !== undefined) registry.caFile = string(path, o.caFile, `${at}.caFile`);
  if (o.requestsPerSecond !== undefined) registry.requestsPerSecond = o.requestsPerSecond === null ? null : number(path, o.requestsPerSecond, `${at}.requestsPerSecond`);
  if (o.credentials !== undefined) {
    const c = object(path, o.credentials, `${at}.credentials`);
    only(path, c, `${at}.credentials`, ['username', 'password']);
    registry.credentials = { username: string(path, c.username, `${at}.credentials.username`), password: string(path, c.password, `${at}.credentials.password`) };
  }
  if (o.credentialHelper !== undefined) registry.credentialHelper = o.credentialHelper === null ? null : string(path, o.credentialHelper, `${at}.credentialHelper`);
  return registry;
}

function policyEntry(path: string, value: unknown, at: string): ConfigFile['policies'][number] {
  const o = object(path, value, at);
  only(path, o, at, ['name', 'enabled', 'source', 'destination', 'repositories', 'tags', 'rewrite', 'override', 'platforms', 'replicateDeletions', 'bandwidthKiBps', 'trigger', 'priority', 'referrers', 'requireSignature']);
  const policy: ConfigFile['policies'][number] = {
    name: string(path, o.name, `${at}.name`),
    source: string(path, o.source, `${at}.source`),
    destination: string(path, o.destination, `${at}.destination`),
  };
  if (o.enabled !== undefined) policy.enabled = boolean(path, o.enabled, `${at}.enabled`);
  const { repositories, tags, rewrite } = POLICY_DEFAULTS;
  if (o.repositories !== undefined) policy.repositories = filter(path, o.repositories, `${at}.repositories`, repositories.include);
  if (o.tags !== undefined) {
    const t = object(path, o.tags, `${at}.tags`);
    only(path, t, `${at}.tags`, ['include', 'exclude', 'syntax', 'semver', 'latest']);
    const syntax = t.syntax ?? tags.syntax;
    if (syntax !== 'glob' && syntax !== 'regex') throw invalid(path, `${at}.tags.syntax must be glob or regex`);
    policy.tags = { ...filter(path, t, `${at}.tags`, tags.include, ['syntax', 'semver', 'latest']), syntax, ...versionFilters(path, t, `${at}.tags`) } satisfies TagFilter;
  }
  if (o.rewrite !== undefined) {
    const r = object(path, o.rewrite, `${at}.rewrite`);
    only(path, r, `${at}.rewrite`, ['namespace', 'flatten']);
    policy.rewrite = {
      namespace: r.namespace === undefined || r.namespace === null ? rewrite.namespace : string(path, r.namespace, `${at}.rewrite.namespace`),
      flatten: r.flatten === undefined ? rewrite.flatten : number(path, r.flatten, `${at}.rewrite.flatten`),
    } satisfies NamespaceRewrite;
  }
  if (o.override !== undefined) policy.override = boolean(path, o.override, `${at}.override`);
  if (o.platforms !== undefined) policy.platforms = list(path, o.platforms, `${at}.platforms`).map((p, i) => string(path, p, `${at}.platforms[${i}]`));
  if (o.replicateDeletions !== undefined) policy.replicateDeletions = boolean(path, o.replicateDeletions, `${at}.replicateDeletions`);
  if (o.bandwidthKiBps !== undefined) policy.bandwidthKiBps = o.bandwidthKiBps === null ? null : number(path, o.bandwidthKiBps, `${at}.bandwidthKiBps`);
  if (o.priority !== undefined) policy.priority = number(path, o.priority, `${at}.priority`);
  if (o.trigger !== undefined) policy.trigger = trigger(path, o.trigger, `${at}.trigger`);
  if (o.referrers !== undefined) policy.referrers = referrers(path, o.referrers, `${at}.referrers`);
  if (o.requireSignature === null) policy.requireSignature = null;
  else if (o.requireSignature !== undefined) policy.requireSignatureFile = string(path, o.requireSignature, `${at}.requireSignature`);
  return policy;
}

/** `semver: ">=1.2 <2"` or `{ range, includePrerelease }`; `latest: 3` (by semver) or `{ count, by }`. */
function versionFilters(path: string, tags: Record<string, unknown>, at: string): Pick<TagFilter, 'semver' | 'latest'> {
  return {
    ...(tags.semver === undefined ? {} : { semver: semverFilter(path, tags.semver, `${at}.semver`) }),
    ...(tags.latest === undefined ? {} : { latest: latestFilter(path, tags.latest, `${at}.latest`) }),
  };
}

function semverFilter(path: string, value: unknown, at: string): SemverFilter {
  if (typeof value === 'string') return { range: value };
  // Unquoted, 1.10 would be read as 1.1.
  if (typeof value === 'number') throw invalid(path, `${at} must be quoted: YAML reads ${value} as a number, not a range`);
  const s = object(path, value, at);
  only(path, s, at, ['range', 'includePrerelease']);
  const range = string(path, s.range, `${at}.range`);
  return s.includePrerelease === undefined ? { range } : { range, includePrerelease: boolean(path, s.includePrerelease, `${at}.includePrerelease`) };
}

function latestFilter(path: string, value: unknown, at: string): LatestFilter {
  if (typeof value === 'number') return { count: value, by: 'semver' };
  const l = object(path, value, at);
  only(path, l, at, ['count', 'by']);
  const by = l.by ?? 'semver';
  if (by !== 'semver' && by !== 'created') throw invalid(path, `${at}.by must be semver or created`);
  return { count: number(path, l.count, `${at}.count`), by };
}

function referrers(path: string, value: unknown, at: string): ReferrerSelection {
  if (value === 'all' || value === 'none') return value;
  if (!Array.isArray(value)) throw invalid(path, `${at} must be all, none or a list of artifact types`);
  return value.map((type, i) => string(path, type, `${at}[${i}]`));
}

function trigger(path: string, value: unknown, at: string): TriggerInput {
  const t = object(path, value, at);
  only(path, t, at, ['type', 'schedule']);
  if (t.type !== 'manual' && t.type !== 'cron' && t.type !== 'event') throw invalid(path, `${at}.type must be manual, cron or event`);
  return { type: t.type, ...(t.schedule === undefined ? {} : { schedule: string(path, t.schedule, `${at}.schedule`) }) };
}

function filter(path: string, value: unknown, at: string, everything: string[], extra: string[] = []): Filter {
  const f = object(path, value, at);
  only(path, f, at, ['include', 'exclude', ...extra]);
  const strings = (v: unknown, field: string) => list(path, v, `${at}.${field}`).map((s, i) => string(path, s, `${at}.${field}[${i}]`));
  return { include: f.include === undefined ? everything : strings(f.include, 'include'), exclude: f.exclude === undefined ? [] : strings(f.exclude, 'exclude') };
}

function object(path: string, value: unknown, at: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(path, `${at || 'the document'} must be a mapping`);
  return value as Record<string, unknown>;
}

function only(path: string, value: Record<string, unknown>, at: string, keys: string[]): void {
  const unknown = Object.keys(value).find((key) => !keys.includes(key));
  if (unknown) throw invalid(path, `${at ? `${at}.` : ''}${unknown} is not a known setting (${keys.join(', ')})`);
}

function list(path: string, value: unknown, at: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(path, `${at} must be a list`);
  return value;
}

function string(path: string, value: unknown, at: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(path, `${at} must be a non-empty string`);
  return value;
}

function boolean(path: string, value: unknown, at: string): boolean {
  if (typeof value !== 'boolean') throw invalid(path, `${at} must be true or false`);
  return value;
}

function number(path: string, value: unknown, at: string): number {
  if (typeof value !== 'number') throw invalid(path, `${at} must be a number`);
  return value;
}

function invalid(path: string, problem: string): RegistryError {
  return new RegistryError('INVALID_CONFIG', `${path}: ${problem}`);
}

import { Cron } from 'croner';
import { rewriteProblem } from '../policy/rewrite.js';
import type { Filter, Id, NamespaceRewrite, Policy, PolicyInput, TagFilter, Trigger } from '../store/types.js';
import { wholeNameExpression } from '../tag-filter.js';
import { InvalidInputError } from './errors.js';
import { checkGiven, checkName, required, type FieldChecks } from './fields.js';
import { checkReferrers, checkSignatureRequirement, DEFAULT_REFERRERS } from './referrers.js';
import { checkTagSelection } from './tag-selection.js';

/**
 * The rules for policies, whether they come from the API or from a ferry.yaml (`ferry serve
 * --config`, `ferry sync -c`).
 *
 * Name uniqueness is the one rule not checked here: a name another policy has is refused by
 * the store (ConflictError), the only place that sees every policy when it writes. The
 * registries a policy connects must exist: checked here through the caller's lookup, and
 * again by the store, for a registry removed in between.
 */

/** A trigger as written: a schedule belongs to cron triggers only, and is refused rather than dropped elsewhere. */
export interface TriggerInput {
  type: Trigger['type'];
  schedule?: string;
}

/** A policy as the API takes it. */
export type PolicyDraft = Omit<PolicyInput, 'trigger'> & { trigger?: TriggerInput };

type RegistryLinks = Pick<PolicyInput, 'sourceRegistryId' | 'destinationRegistryId'>;

/** What a policy says besides which registries it connects (ferry.yaml names them, the API gives ids). */
export type PolicySettingsDraft = Omit<PolicyDraft, keyof RegistryLinks>;

export type PolicySettings = Omit<Policy, 'id' | 'createdAt' | 'updatedAt' | keyof RegistryLinks>;

/** A policy as stored, but for its id and timestamps. */
export type PolicyFields = PolicySettings & RegistryLinks;

export type RegistryExists = (id: Id) => Promise<boolean>;

export const POLICY_DEFAULTS: Omit<PolicySettings, 'name'> = {
  enabled: true,
  repositories: { include: ['**'], exclude: [] },
  tags: { include: ['*'], exclude: [], syntax: 'glob' },
  rewrite: { namespace: null, flatten: 0 },
  override: true,
  platforms: [],
  replicateDeletions: false,
  bandwidthKiBps: null,
  trigger: { type: 'manual' },
  priority: 0,
  referrers: DEFAULT_REFERRERS,
  requireSignature: null,
};

/** As image indexes name platforms, which is what the selection matches (platforms.ts). */
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;

const checks: FieldChecks<PolicySettingsDraft, PolicySettings> = {
  name: checkName,
  enabled: (enabled) => enabled,
  repositories: (repositories) => checkFilter('repositories', repositories, 'glob'),
  tags: (tags) => ({ ...checkFilter('tags', tags, tags.syntax), syntax: tags.syntax, ...checkTagSelection(tags) }),
  rewrite: checkRewrite,
  override: (override) => override,
  platforms: checkPlatforms,
  replicateDeletions: (replicateDeletions) => replicateDeletions,
  bandwidthKiBps: (bandwidth) => (bandwidth === null ? null : checkBandwidth(bandwidth)),
  trigger: checkTrigger,
  priority: checkPriority,
  referrers: checkReferrers,
  requireSignature: (requirement) => (requirement === null ? null : checkSignatureRequirement(requirement)),
};

/** A new policy, defaults filled in; throws InvalidInputError naming the first setting that breaks a rule. */
export async function checkPolicy(input: PolicyDraft, registryExists: RegistryExists): Promise<PolicyFields> {
  const { sourceRegistryId, destinationRegistryId, ...settings } = input;
  const checked = checkPolicySettings(settings);
  const name = required(checked.name, 'name');
  await checkRegistryLinks({ sourceRegistryId, destinationRegistryId }, registryExists);
  return { ...POLICY_DEFAULTS, ...checked, name, sourceRegistryId, destinationRegistryId };
}

/** The settings a change gives, checked; those it leaves out keep their stored value. */
export async function checkPolicyPatch(patch: Partial<PolicyDraft>, registryExists: RegistryExists): Promise<Partial<PolicyFields>> {
  const { sourceRegistryId, destinationRegistryId, ...settings } = patch;
  return { ...checkPolicySettings(settings), ...(await checkRegistryLinks({ sourceRegistryId, destinationRegistryId }, registryExists)) };
}

/** The settings given, checked, but not which registries: ferry.yaml names those, and resolves the names itself. */
export function checkPolicySettings(settings: Partial<PolicySettingsDraft>): Partial<PolicySettings> {
  return checkGiven(settings, checks);
}

async function checkRegistryLinks(links: Partial<RegistryLinks>, registryExists: RegistryExists): Promise<Partial<RegistryLinks>> {
  const checked: Partial<RegistryLinks> = {};
  for (const field of ['sourceRegistryId', 'destinationRegistryId'] as const) {
    const id = links[field];
    if (id === undefined) continue;
    if (!(await registryExists(id))) throw new InvalidInputError(field, `${JSON.stringify(id)} names no registry`);
    checked[field] = id;
  }
  return checked;
}

/** Caught when written: at run time a bad pattern would fail every run of the policy. */
function checkFilter(field: string, filter: Filter, syntax: TagFilter['syntax']): Filter {
  const patterns = (list: keyof Filter) => filter[list].map((pattern, i) => checkPattern(`${field}.${list}.${i}`, pattern, syntax));
  return { include: patterns('include'), exclude: patterns('exclude') };
}

function checkPattern(field: string, pattern: string, syntax: TagFilter['syntax']): string {
  if (pattern === '') throw new InvalidInputError(field, 'must not be empty');
  if (syntax === 'regex') {
    try {
      wholeNameExpression(pattern);
    } catch (error) {
      throw new InvalidInputError(field, `${JSON.stringify(pattern)} is not a regular expression: ${(error as Error).message}`);
    }
  }
  return pattern;
}

function checkRewrite(rewrite: NamespaceRewrite): NamespaceRewrite {
  const unusable = rewriteProblem(rewrite);
  if (unusable) throw new InvalidInputError(`rewrite.${unusable.field}`, unusable.problem);
  return { namespace: rewrite.namespace, flatten: rewrite.flatten };
}

/** Also the rule for `ferry copy --platform`. */
export function checkPlatforms(platforms: string[]): string[] {
  platforms.forEach((platform, i) => {
    const field = `platforms.${i}`;
    if (!PLATFORM.test(platform)) throw new InvalidInputError(field, `${JSON.stringify(platform)} is not os/arch or os/arch/variant, such as linux/amd64 or linux/arm64/v8`);
    if (platforms.indexOf(platform) !== i) throw new InvalidInputError(field, `${JSON.stringify(platform)} is listed twice`);
  });
  return [...platforms];
}

function checkBandwidth(bandwidth: number): number {
  if (!Number.isFinite(bandwidth) || bandwidth <= 0) throw new InvalidInputError('bandwidthKiBps', `${bandwidth} is not a positive number of KiB/s (null for no limit)`);
  return bandwidth;
}

function checkPriority(priority: number): number {
  if (!Number.isSafeInteger(priority)) throw new InvalidInputError('priority', `${priority} is not an integer`);
  return priority;
}

function checkTrigger({ type, schedule }: TriggerInput): Trigger {
  const field = 'trigger.schedule';
  if (type !== 'cron') {
    if (schedule !== undefined) throw new InvalidInputError(field, `is only for cron triggers, not ${type}`);
    return { type };
  }
  if (schedule === undefined) throw new InvalidInputError(field, 'is required for a cron trigger');
  return { type, schedule: checkSchedule(field, schedule) };
}

/** Read by croner as the scheduler will read it. */
function checkSchedule(field: string, schedule: string): string {
  let cron: Cron;
  try {
    cron = new Cron(schedule, { paused: true });
  } catch (error) {
    throw new InvalidInputError(field, `${JSON.stringify(schedule)} is not a cron schedule: ${(error as Error).message}`);
  }
  const [recurring, next] = [cron.getPattern() !== undefined, cron.nextRun()];
  cron.stop();
  // Croner also takes a date to run once; a policy is paused with `enabled`, not with a schedule that never comes.
  if (!recurring) throw new InvalidInputError(field, `${JSON.stringify(schedule)} is a date, not a cron schedule (minute hour day month weekday)`);
  if (next === null) throw new InvalidInputError(field, `${JSON.stringify(schedule)} never fires`);
  return schedule;
}

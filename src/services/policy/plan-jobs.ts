import type { WorkItem } from '../../actors/types.js';
import type { DeletionInput } from '../../machines/deletion.js';
import { REPLICATION_DEFAULTS, type ReplicationInput } from '../../machines/replication.js';
import { DEFAULT_RETRY } from '../../machines/retry.js';
import { listRepositories } from '../registry/catalog.js';
import { RegistryError } from '../registry/errors.js';
import type { Registries } from '../registry/registries.js';
import type { PolicyFields } from '../domain/policy.js';
import type { NewJob, Registry } from '../store/types.js';
import { compileFilter, compileTagFilter } from '../tag-filter.js';
import { rewriteRepository } from './rewrite.js';

/** What a policy run covers. */
export type PolicyScope =
  /** Manual and cron runs: every repository the filters select. */
  | { kind: 'all' }
  /** An event: one tag pushed on the source. */
  | { kind: 'push'; repository: string; tag: string }
  /** An event: a tag or a manifest deleted on the source. */
  | { kind: 'delete'; repository: string; tag?: string; digest?: string };

const DELETE_CONCURRENCY = 4;

/** The jobs of one policy run: a copy job per selected repository, or one job for an event. */
export async function planJobs(
  policy: PolicyFields,
  source: Registry,
  destination: Registry,
  registries: Registries,
  scope: PolicyScope,
  signal?: AbortSignal,
): Promise<NewJob[]> {
  const selected = compileFilter(policy.repositories);
  switch (scope.kind) {
    case 'all': {
      const client = await registries.get(source.url, signal);
      const repositories = (await listRepositories(client, signal)).filter(selected).sort();
      return repositories.map((repository) => copyJob(policy, source, destination, repository));
    }
    case 'push': {
      if (!selected(scope.repository) || !compileTagFilter(policy.tags)(scope.tag)) return [];
      // Whether one tag is among the latest N takes the repository's listing: the job lists it,
      // copying the pushed tag only if it is one of them (and bringing the others up to date).
      // A pending job copies what the tag is when it runs: a second push of the tag adds nothing to it.
      if (policy.tags.latest) return [{ ...copyJob(policy, source, destination, scope.repository), coalesceKey: `copy ${policy.name} ${scope.repository}` }];
      const job = copyJob(policy, source, destination, scope.repository, [{ source: scope.tag, target: scope.tag }]);
      return [{ ...job, coalesceKey: `copy ${policy.name} ${scope.repository}:${scope.tag}` }];
    }
    case 'delete': {
      if (!policy.replicateDeletions || !selected(scope.repository)) return [];
      // A deleted tag is gone from the source's listing, so it cannot rank among the latest N: it
      // is judged by the patterns and semver range alone, and a tag once copied as one of the latest goes too.
      if (scope.tag !== undefined && !compileTagFilter(policy.tags)(scope.tag)) return [];
      return [deleteJob(policy, destination, scope)];
    }
  }
}

function copyJob(policy: PolicyFields, source: Registry, destination: Registry, repository: string, items?: WorkItem[]): NewJob {
  const target = rewriteRepository(repository, policy.rewrite);
  const input: ReplicationInput = {
    source: { registry: source.url, repository },
    destination: { registry: destination.url, repository: target },
    ...(items ? { items } : {}),
    tagFilter: policy.tags,
    platforms: policy.platforms,
    override: policy.override,
    bandwidthKiBps: policy.bandwidthKiBps,
    batchSize: REPLICATION_DEFAULTS.batchSize,
    batchesInFlight: REPLICATION_DEFAULTS.batchesInFlight,
    blobConcurrency: REPLICATION_DEFAULTS.blobConcurrency,
    retry: DEFAULT_RETRY,
    dryRun: false,
    referrers: policy.referrers,
    ...(policy.requireSignature ? { requireSignature: policy.requireSignature } : {}),
  };
  return {
    operation: 'copy',
    source: `${source.url}/${repository}`,
    destination: `${destination.url}/${target}`,
    priority: policy.priority,
    input,
  };
}

function deleteJob(policy: PolicyFields, destination: Registry, scope: Extract<PolicyScope, { kind: 'delete' }>): NewJob {
  const target = rewriteRepository(scope.repository, policy.rewrite);
  // A tag when the event names one: deleting its digest would take every other tag of that manifest too.
  const references = scope.tag !== undefined ? { tags: [scope.tag] }
    : scope.digest !== undefined ? { digests: [scope.digest] }
    : undefined;
  if (!references) throw new RegistryError('INVALID_REFERENCE', `deletion in ${scope.repository}: the event names neither a tag nor a digest`);
  const input: DeletionInput = {
    destination: { registry: destination.url, repository: target },
    ...references,
    tagFilter: policy.tags,
    concurrency: DELETE_CONCURRENCY,
    retry: DEFAULT_RETRY,
  };
  return { operation: 'delete', source: null, destination: `${destination.url}/${target}`, priority: policy.priority, input };
}

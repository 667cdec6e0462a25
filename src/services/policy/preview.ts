import { toPromise } from 'xstate';
import type { ReplicationInput } from '../../machines/replication.js';
import { DEFAULT_RETRY } from '../../machines/retry.js';
import { jobStatus } from '../../machines/status.js';
import { BlobLocator } from '../blob-locator.js';
import type { PolicyFields } from '../domain/policy.js';
import { createReplication, type Environment } from '../interpreter.js';
import { mapLimit } from '../map-limit.js';
import type { Registry } from '../store/types.js';
import type { LeftOutReason } from '../tag-selection.js';
import { planJobs } from './plan-jobs.js';

/** How far a preview goes: it runs while a person edits a form, so it stops short of big catalogs. */
export interface PreviewBounds {
  repositories: number;
  timeoutMs: number;
}

export const PREVIEW_BOUNDS: PreviewBounds = { repositories: 10, timeoutMs: 20_000 };
const CONCURRENCY = 4;

export interface RepositoryPreview {
  source: string;
  destination: string;
  /** Absent when the dry run did not get as far as listing the tags. */
  listed?: number;
  selected: string[];
  leftOut: Partial<Record<LeftOutReason, number>>;
  toCopy: Array<{ tag: string; bytes: number }>;
  unchanged: string[];
  /** Of the blobs the destination lacks, each counted once per repository. */
  bytes: number;
  /** Why the dry run ended early: a registry's error, or the time bound. */
  error?: string;
}

export interface PolicyPreview {
  /** The repositories the filters select in the source's catalog, of which the first few are previewed. */
  repositoriesSelected: number;
  repositories: RepositoryPreview[];
  bytes: number;
  bounds: PreviewBounds;
}

/** A policy's first run as a dry run: the catalog, the tags each repository's filters keep, and what is missing at the destination. */
export async function previewPolicy(
  policy: PolicyFields,
  source: Registry,
  destination: Registry,
  { registries, logger }: Pick<Environment, 'registries' | 'logger'>,
  cancel: AbortSignal,
  bounds = PREVIEW_BOUNDS,
): Promise<PolicyPreview> {
  const signal = AbortSignal.any([AbortSignal.timeout(bounds.timeoutMs), cancel]);
  const jobs = await planJobs(policy, source, destination, registries, { kind: 'all' }, signal);
  // The destination is read, never written: no upload sessions to share with the workers.
  const environment: Environment = { registries, logger, locator: new BlobLocator() };
  const repositories = await mapLimit(jobs.slice(0, bounds.repositories), CONCURRENCY, (job) =>
    // One attempt: a person waits for the answer, and reads the error instead of a retry.
    dryRun({ ...(job.input as ReplicationInput), dryRun: true, retry: { ...DEFAULT_RETRY, maxAttempts: 1 } }, job.source ?? '', job.destination, environment, signal),
  );
  return { repositoriesSelected: jobs.length, repositories, bytes: repositories.reduce((sum, r) => sum + r.bytes, 0), bounds };
}

async function dryRun(input: ReplicationInput, source: string, destination: string, environment: Environment, signal: AbortSignal): Promise<RepositoryPreview> {
  const preview: RepositoryPreview = { source, destination, selected: [], leftOut: {}, toCopy: [], unchanged: [], bytes: 0 };
  const missing = new Map<string, number>();
  const actor = createReplication(input, environment, {
    onEvent: (event) => {
      if (event.type === 'tags.selected') Object.assign(preview, { listed: event.listed, selected: event.kept, leftOut: event.leftOut });
      else if (event.type === 'tag.unchanged') preview.unchanged.push(event.item.target);
      else if (event.type === 'tag.planned') {
        const { plan } = event;
        if (plan.manifests.length > 0) preview.toCopy.push({ tag: plan.item.target, bytes: plan.missingBytes });
        for (const blob of plan.blobs) if (plan.missing.includes(blob.digest)) missing.set(blob.digest, blob.size);
      }
    },
  });
  const stop = () => actor.send({ type: 'STOP' });
  signal.addEventListener('abort', stop, { once: true });
  actor.start();
  actor.send({ type: 'START' });
  try {
    await toPromise(actor);
  } finally {
    signal.removeEventListener('abort', stop);
  }
  const snapshot = actor.getSnapshot();
  preview.bytes = [...missing.values()].reduce((sum, size) => sum + size, 0);
  if (signal.aborted) preview.error = 'not finished within the time bound';
  else if (jobStatus(snapshot) !== 'finished') preview.error = snapshot.context.error?.message ?? `ended ${jobStatus(snapshot)}`;
  return preview;
}

import { assign, enqueueActions, setup } from 'xstate';
import type { BackoffInput } from '../actors/backoff.js';
import type { CheckInput } from '../actors/check.js';
import type { InitializeInput, InitializeOutput } from '../actors/initialize.js';
import type { PullManifestInput, PullManifestOutput } from '../actors/pull-manifest.js';
import type { PushManifestInput, PushManifestOutput } from '../actors/push-manifest.js';
import type { TransferBlobInput, TransferBlobOutput, TransferEvent } from '../actors/transfer-blob.js';
import type { FailedTag, Location, ReferrerOutcome, ReferrerSelection, RefusedTag, SignatureRequirement, TagOutcome, TagPlan, WorkItem } from '../actors/types.js';
import type { ErrorInfo } from '../services/registry/errors.js';
import type { Descriptor } from '../services/registry/media-types.js';
import type { TagFilter } from '../services/tag-filter.js';
import type { TagSelection } from '../services/tag-selection.js';
import { provided } from './provided.js';
import { canRetry, fail, phaseFailedIn, retrying, scheduleRetry, type RetryContext, type RetryPolicy } from './retry.js';

export interface ReplicationInput {
  source: Location;
  destination: Location;
  /** Explicit items (a tag or digest on the command line); otherwise every source tag. */
  items?: WorkItem[];
  tagFilter: TagFilter;
  platforms: string[];
  /** Replace a destination tag that points at another digest; otherwise keep it. */
  override: boolean;
  /** Blob bytes per second for the whole job, in KiB; null for no limit. */
  bandwidthKiBps: number | null;
  /** Items planned, transferred and pushed together per turn of the loop. */
  batchSize: number;
  /** Batches of items compared by HEAD per turn (default 4): a sync with little to copy goes that much faster. */
  compareAhead?: number;
  blobConcurrency: number;
  retry: RetryPolicy;
  dryRun: boolean;
  /** Which referrers (signatures, SBOMs, attestations) travel with each image. */
  referrers: ReferrerSelection;
  /** Copy only images carrying a cosign signature that verifies with this key. */
  requireSignature?: SignatureRequirement;
}

export interface ReplicationProgress {
  tagsTotal: number;
  tagsCopied: number;
  tagsUnchanged: number;
  /** Tags left as they were because they point elsewhere and override is off. */
  tagsKept: number;
  /** Tags not copied because no signature verified with the required key. */
  tagsRefused: number;
  /** Tags that failed alone (manifest or blob missing, corrupt or refused); the job went on. */
  tagsFailed: number;
  /** Referrers pushed with their subjects, apart from tags. */
  referrersCopied: number;
  blobsCopied: number;
  blobsMounted: number;
  bytesCopied: number;
}

export interface ReplicationContext extends RetryContext {
  job: ReplicationInput;
  /** Items not planned yet. */
  pending: WorkItem[];
  /** The current batch: planned, waiting for its blobs and push. */
  plans: TagPlan[];
  missing: Descriptor[];
  progress: ReplicationProgress;
}

export type ReplicationEvent = { type: 'START' } | { type: 'STOP' };

export type ReplicationEmitted =
  | { type: 'tag.planned'; plan: TagPlan }
  | ({ type: 'tag.copied' } & TagOutcome)
  | ({ type: 'tag.unchanged' } & TagOutcome)
  | ({ type: 'tag.kept' } & TagOutcome)
  | ({ type: 'tag.refused' } & RefusedTag)
  | ({ type: 'tag.failed' } & FailedTag)
  | ({ type: 'referrer.copied' } & ReferrerOutcome)
  | ({ type: 'tags.selected' } & TagSelection);

const phaseFailed = phaseFailedIn('replication');

/**
 * Progress with `failed` counted; an unchanged image whose missing referrers failed moves from
 * unchanged to failed, so that each tag is counted once.
 */
function withFailures({ progress, plans }: ReplicationContext, failed: FailedTag[]): ReplicationProgress {
  const referrersOnly = failed.filter((f) => plans.find((plan) => plan.item.source === f.item.source && plan.item.target === f.item.target)?.manifests.length === 0).length;
  return { ...progress, tagsFailed: progress.tagsFailed + failed.length, tagsUnchanged: progress.tagsUnchanged - referrersOnly };
}

const COMPARE_AHEAD = 4;

/**
 * Defaults for the CLI and policies. 8 blobs in flight rather than 4 keep both registries busy
 * when blobs are small; a job then holds at most 8 chunk buffers (16 MiB each) for large ones.
 */
export const REPLICATION_DEFAULTS = { batchSize: 8, blobConcurrency: 8 } as const;

export const replicationMachine = setup({
  types: {
    input: {} as ReplicationInput,
    context: {} as ReplicationContext,
    events: {} as ReplicationEvent,
    emitted: {} as ReplicationEmitted,
  },
  actors: {
    resolveTags: provided<InitializeOutput, InitializeInput>('resolveTags'),
    checkAccess: provided<void, CheckInput>('checkAccess'),
    planBatch: provided<PullManifestOutput, PullManifestInput>('planBatch'),
    copyBlobs: provided<TransferBlobOutput, TransferBlobInput, TransferEvent>('copyBlobs'),
    pushManifests: provided<PushManifestOutput, PushManifestInput>('pushManifests'),
    waitForBackoff: provided<void, BackoffInput>('waitForBackoff'),
  },
  guards: {
    noTagLeft: (_, batch: PullManifestOutput) => batch.taken === 0,
    isDryRun: ({ context }) => context.job.dryRun,
    alreadyOnDestination: (_, batch: PullManifestOutput) => batch.plans.length === 0,
    blobsMissing: (_, batch: PullManifestOutput) => batch.missing.length > 0,
    canRetry: ({ context }, error: ErrorInfo) => canRetry(context, error),
  },
  actions: {
    queueTags: enqueueActions(({ context, enqueue }, output: InitializeOutput) => {
      const pending = context.job.items ?? output.tags.map((tag) => ({ source: tag, target: tag }));
      enqueue.assign({ pending, attempt: 0, progress: { ...context.progress, tagsTotal: pending.length } });
      if (output.selection) enqueue.emit({ type: 'tags.selected', ...output.selection });
    }),
    resetAttempts: assign({ attempt: 0 }),
    acceptBatch: enqueueActions(({ context, enqueue }, batch: PullManifestOutput) => {
      enqueue.assign({
        pending: context.pending.slice(batch.taken),
        plans: batch.plans,
        missing: batch.missing,
        attempt: 0,
        progress: {
          ...context.progress,
          tagsUnchanged: context.progress.tagsUnchanged + batch.unchanged.length,
          tagsKept: context.progress.tagsKept + batch.kept.length,
          tagsRefused: context.progress.tagsRefused + batch.refused.length,
          tagsFailed: context.progress.tagsFailed + batch.failed.length,
        },
      });
      for (const failure of batch.failed) enqueue.emit({ type: 'tag.failed', ...failure });
      for (const outcome of batch.unchanged) enqueue.emit({ type: 'tag.unchanged', ...outcome });
      for (const outcome of batch.kept) enqueue.emit({ type: 'tag.kept', ...outcome });
      for (const outcome of batch.refused) enqueue.emit({ type: 'tag.refused', ...outcome });
    }),
    reportPlans: enqueueActions(({ enqueue }, batch: PullManifestOutput) => {
      for (const plan of batch.plans) enqueue.emit({ type: 'tag.planned', plan });
    }),
    countTransfer: enqueueActions(({ context, enqueue }, transfer: TransferBlobOutput) => {
      const broken = new Map(transfer.failed.map((blob) => [blob.digest, blob.error]));
      const failed = context.plans.flatMap((plan): FailedTag[] => {
        const blob = plan.blobs.find((b) => broken.has(b.digest));
        return blob ? [{ item: plan.item, sourceDigest: plan.sourceDigest, error: broken.get(blob.digest)! }] : [];
      });
      enqueue.assign({
        attempt: 0,
        missing: [],
        plans: context.plans.filter((plan) => !plan.blobs.some((b) => broken.has(b.digest))),
        progress: {
          ...withFailures(context, failed),
          blobsCopied: context.progress.blobsCopied + transfer.copied,
          blobsMounted: context.progress.blobsMounted + transfer.mounted,
          bytesCopied: context.progress.bytesCopied + transfer.bytes,
        },
      });
      for (const failure of failed) enqueue.emit({ type: 'tag.failed', ...failure });
    }),
    countPushed: enqueueActions(({ context, enqueue }, output: PushManifestOutput) => {
      enqueue.assign({
        attempt: 0,
        plans: [],
        progress: {
          ...withFailures(context, output.failed),
          tagsCopied: context.progress.tagsCopied + output.pushed.length,
          referrersCopied: context.progress.referrersCopied + output.referrers.length,
        },
      });
      for (const outcome of output.pushed) enqueue.emit({ type: 'tag.copied', ...outcome });
      for (const failure of output.failed) enqueue.emit({ type: 'tag.failed', ...failure });
      for (const outcome of output.referrers) enqueue.emit({ type: 'referrer.copied', ...outcome });
    }),
    scheduleRetry: assign(({ context }, error: ErrorInfo) => scheduleRetry(context, error)),
    fail: assign(({ context }, error: ErrorInfo) => fail(context, error)),
  },
}).createMachine({
  id: 'replication',
  // Raise it when a change makes snapshots stored by the previous definition unsafe to restore.
  version: '3',
  initial: 'pending',
  context: ({ input }) => ({
    job: input,
    pending: [],
    plans: [],
    missing: [],
    progress: { tagsTotal: 0, tagsCopied: 0, tagsUnchanged: 0, tagsKept: 0, tagsRefused: 0, tagsFailed: 0, referrersCopied: 0, blobsCopied: 0, blobsMounted: 0, bytesCopied: 0 },
    attempt: 0,
    retryAt: undefined,
    error: undefined,
  }),
  on: { STOP: '.stopped' },
  states: {
    pending: {
      on: { START: 'running' },
    },
    running: {
      initial: 'initialize',
      states: {
        initialize: {
          invoke: {
            id: 'initialize',
            src: 'resolveTags',
            onError: phaseFailed,
            input: ({ context: { job } }) => ({
              registries: [job.source.registry, job.destination.registry],
              list: job.source,
              ...(job.items ? { tags: job.items.map((item) => item.source) } : { destination: job.destination }),
              filter: job.tagFilter,
              absentRepository: 'error' as const,
            }),
            onDone: { target: 'check', actions: { type: 'queueTags', params: ({ event }) => event.output } },
          },
        },
        check: {
          invoke: {
            id: 'check',
            src: 'checkAccess',
            onError: phaseFailed,
            input: ({ context: { job } }) => ({ source: job.source, destination: job.destination, read: job.items !== undefined || job.dryRun, write: !job.dryRun }),
            onDone: { target: 'pullManifest', actions: 'resetAttempts' },
          },
        },
        pullManifest: {
          invoke: {
            id: 'pullManifest',
            src: 'planBatch',
            onError: phaseFailed,
            input: ({ context: { job, pending } }) => ({
              source: job.source,
              destination: job.destination,
              items: pending.slice(0, job.batchSize * (job.compareAhead ?? COMPARE_AHEAD)),
              batchSize: job.batchSize,
              platforms: job.platforms,
              override: job.override,
              referrers: job.referrers,
              ...(job.requireSignature ? { requireSignature: job.requireSignature } : {}),
            }),
            onDone: [
              { guard: { type: 'noTagLeft', params: ({ event }) => event.output }, target: '#replication.finished' },
              {
                guard: 'isDryRun',
                target: 'pullManifest',
                reenter: true,
                actions: [
                  { type: 'acceptBatch', params: ({ event }) => event.output },
                  { type: 'reportPlans', params: ({ event }) => event.output },
                ],
              },
              {
                guard: { type: 'alreadyOnDestination', params: ({ event }) => event.output },
                target: 'pullManifest',
                reenter: true,
                actions: { type: 'acceptBatch', params: ({ event }) => event.output },
              },
              {
                guard: { type: 'blobsMissing', params: ({ event }) => event.output },
                target: 'transferBlob',
                actions: { type: 'acceptBatch', params: ({ event }) => event.output },
              },
              { target: 'pushManifest', actions: { type: 'acceptBatch', params: ({ event }) => event.output } },
            ],
          },
        },
        transferBlob: {
          invoke: {
            id: 'transferBlob',
            src: 'copyBlobs',
            onError: phaseFailed,
            input: ({ context: { job, missing } }) => ({
              source: job.source,
              destination: job.destination,
              blobs: missing,
              concurrency: job.blobConcurrency,
              bandwidthKiBps: job.bandwidthKiBps,
            }),
            onDone: { target: 'pushManifest', actions: { type: 'countTransfer', params: ({ event }) => event.output } },
          },
        },
        pushManifest: {
          invoke: {
            id: 'pushManifest',
            src: 'pushManifests',
            onError: phaseFailed,
            input: ({ context: { job, plans } }) => ({ source: job.source, destination: job.destination, plans }),
            onDone: { target: 'pullManifest', actions: { type: 'countPushed', params: ({ event }) => event.output } },
          },
        },
        resume: { type: 'history' },
      },
    },
    retrying,
    finished: { type: 'final' },
    error: { type: 'final' },
    stopped: { type: 'final' },
  },
  output: ({ context }) => ({ progress: context.progress, error: context.error }),
});

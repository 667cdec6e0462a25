import { assign, enqueueActions, setup } from 'xstate';
import type { BackoffInput } from '../actors/backoff.js';
import type { PullManifestInput, PullManifestOutput } from '../actors/pull-manifest.js';
import type { PushManifestInput, PushManifestOutput } from '../actors/push-manifest.js';
import type { TransferBlobInput, TransferBlobOutput, TransferEvent } from '../actors/transfer-blob.js';
import type { FailedTag, TagPlan, WorkItem } from '../actors/types.js';
import type { ErrorInfo } from '../services/registry/errors.js';
import type { Descriptor } from '../services/registry/media-types.js';
import { provided } from './provided.js';
import type { ReplicationEmitted, ReplicationInput, ReplicationProgress } from './replication.js';
import { canRetry, fail, phaseFailedIn, retrying, scheduleRetry, type RetryContext } from './retry.js';

/**
 * The path every tag of a replication takes: its manifests pulled and planned, the blobs it
 * lacks transferred, its manifests pushed. A job runs several of these at once, each for a few
 * tags (see `replication.ts`), so that one batch's blobs move while another's manifests are
 * read and a third's are pushed.
 */

export interface BatchInput {
  /** Names the batch among the job's: `batch-7`. */
  id: string;
  job: ReplicationInput;
  items: WorkItem[];
}

export interface BatchContext extends RetryContext {
  id: string;
  job: ReplicationInput;
  items: WorkItem[];
  plans: TagPlan[];
  missing: Descriptor[];
  /** What this batch counted: the job adds it to its own when the batch is done. */
  progress: ReplicationProgress;
}

export interface BatchOutput {
  id: string;
  progress: ReplicationProgress;
  /** Why the batch gave up (permanent, or transient too many times in a row): the job fails with it. */
  error?: ErrorInfo;
}

export const NO_PROGRESS: ReplicationProgress = {
  tagsTotal: 0,
  tagsCopied: 0,
  tagsUnchanged: 0,
  tagsKept: 0,
  tagsRefused: 0,
  tagsFailed: 0,
  referrersCopied: 0,
  blobsCopied: 0,
  blobsMounted: 0,
  bytesCopied: 0,
};

const phaseFailed = phaseFailedIn('batch');

/**
 * Progress with `failed` counted; an unchanged image whose missing referrers failed moves from
 * unchanged to failed, so that each tag is counted once.
 */
function withFailures({ progress, plans }: BatchContext, failed: FailedTag[]): ReplicationProgress {
  const referrersOnly = failed.filter((f) => plans.find((plan) => plan.item.source === f.item.source && plan.item.target === f.item.target)?.manifests.length === 0).length;
  return { ...progress, tagsFailed: progress.tagsFailed + failed.length, tagsUnchanged: progress.tagsUnchanged - referrersOnly };
}

export const batchMachine = setup({
  types: {
    input: {} as BatchInput,
    context: {} as BatchContext,
    emitted: {} as ReplicationEmitted,
    output: {} as BatchOutput,
  },
  actors: {
    planBatch: provided<PullManifestOutput, PullManifestInput>('planBatch'),
    copyBlobs: provided<TransferBlobOutput, TransferBlobInput, TransferEvent>('copyBlobs'),
    pushManifests: provided<PushManifestOutput, PushManifestInput>('pushManifests'),
    waitForBackoff: provided<void, BackoffInput>('waitForBackoff'),
  },
  guards: {
    isDryRun: ({ context }) => context.job.dryRun,
    alreadyOnDestination: (_, batch: PullManifestOutput) => batch.plans.length === 0,
    blobsMissing: (_, batch: PullManifestOutput) => batch.missing.length > 0,
    canRetry: ({ context }, error: ErrorInfo) => canRetry(context, error),
  },
  actions: {
    acceptPlans: enqueueActions(({ context, enqueue }, batch: PullManifestOutput) => {
      enqueue.assign({
        plans: batch.plans,
        missing: batch.missing,
        attempt: 0,
        error: undefined,
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
        error: undefined,
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
        error: undefined,
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
    scheduleRetry: enqueueActions(({ context, event, enqueue }, error: ErrorInfo) => {
      const retry = scheduleRetry(context, error);
      enqueue.assign(retry);
      // The phase's actor is invoked under the phase's name: `xstate.error.actor.transferBlob`.
      const phase = event.type.replace(/^xstate\.error\.actor\./, '');
      enqueue.emit({ type: 'batch.retrying', batch: context.id, phase, attempt: retry.attempt!, maxAttempts: context.job.retry.maxAttempts, retryAt: retry.retryAt!, error });
    }),
    fail: assign(({ context }, error: ErrorInfo) => fail(context, error)),
  },
}).createMachine({
  id: 'batch',
  initial: 'running',
  context: ({ input }) => ({
    id: input.id,
    job: input.job,
    items: input.items,
    plans: [],
    missing: [],
    progress: NO_PROGRESS,
    attempt: 0,
    retryAt: undefined,
    error: undefined,
  }),
  states: {
    running: {
      initial: 'pullManifest',
      states: {
        pullManifest: {
          invoke: {
            id: 'pullManifest',
            src: 'planBatch',
            onError: phaseFailed,
            input: ({ context: { job, items } }) => ({
              source: job.source,
              destination: job.destination,
              items,
              platforms: job.platforms,
              override: job.override,
              referrers: job.referrers,
              ...(job.requireSignature ? { requireSignature: job.requireSignature } : {}),
            }),
            onDone: [
              {
                guard: 'isDryRun',
                target: '#batch.done',
                actions: [
                  { type: 'acceptPlans', params: ({ event }) => event.output },
                  { type: 'reportPlans', params: ({ event }) => event.output },
                ],
              },
              {
                guard: { type: 'alreadyOnDestination', params: ({ event }) => event.output },
                target: '#batch.done',
                actions: { type: 'acceptPlans', params: ({ event }) => event.output },
              },
              {
                guard: { type: 'blobsMissing', params: ({ event }) => event.output },
                target: 'transferBlob',
                actions: { type: 'acceptPlans', params: ({ event }) => event.output },
              },
              { target: 'pushManifest', actions: { type: 'acceptPlans', params: ({ event }) => event.output } },
            ],
          },
        },
        transferBlob: {
          invoke: {
            id: 'transferBlob',
            src: 'copyBlobs',
            onError: phaseFailed,
            input: ({ context: { job, missing } }) => ({ source: job.source, destination: job.destination, blobs: missing }),
            onDone: { target: 'pushManifest', actions: { type: 'countTransfer', params: ({ event }) => event.output } },
          },
        },
        pushManifest: {
          invoke: {
            id: 'pushManifest',
            src: 'pushManifests',
            onError: phaseFailed,
            input: ({ context: { job, plans } }) => ({ source: job.source, destination: job.destination, plans }),
            onDone: { target: '#batch.done', actions: { type: 'countPushed', params: ({ event }) => event.output } },
          },
        },
        resume: { type: 'history' },
      },
    },
    retrying,
    done: { type: 'final' },
    error: { type: 'final' },
  },
  output: ({ context }) => ({ id: context.id, progress: context.progress, ...(context.error ? { error: context.error } : {}) }),
});

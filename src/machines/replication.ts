import { assign, enqueueActions, setup } from 'xstate';
import { batchMachine, NO_PROGRESS, type BatchOutput } from './batch.js';
import type { BackoffInput } from '../actors/backoff.js';
import type { CheckInput } from '../actors/check.js';
import type { InitializeInput, InitializeOutput } from '../actors/initialize.js';
import type { FailedTag, Location, ReferrerOutcome, ReferrerSelection, RefusedTag, SignatureRequirement, TagOutcome, TagPlan, WorkItem } from '../actors/types.js';
import type { ErrorInfo } from '../services/registry/errors.js';
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
  /** Items planned, transferred and pushed together, as one batch. */
  batchSize: number;
  /** Batches under way at once: while one's blobs move, others' manifests are read or pushed. */
  batchesInFlight: number;
  /** Blobs in flight for the whole job, whichever batches they are for. */
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
  /** Items not handed to a batch yet. */
  pending: WorkItem[];
  /** The ids of the batches under way (`batch-3`). */
  batches: string[];
  /** How many batches the job has started: the next one's number. */
  started: number;
  progress: ReplicationProgress;
}

export type ReplicationEvent =
  | { type: 'START' }
  | { type: 'STOP' }
  /** A batch of the job ended (XState sends its output when a spawned machine reaches a final state). */
  | { type: `xstate.done.actor.batch-${number}`; output: BatchOutput };

export type ReplicationEmitted =
  | { type: 'tag.planned'; plan: TagPlan }
  | ({ type: 'tag.copied' } & TagOutcome)
  | ({ type: 'tag.unchanged' } & TagOutcome)
  | ({ type: 'tag.kept' } & TagOutcome)
  | ({ type: 'tag.refused' } & RefusedTag)
  | ({ type: 'tag.failed' } & FailedTag)
  | ({ type: 'referrer.copied' } & ReferrerOutcome)
  | ({ type: 'tags.selected' } & TagSelection)
  /** A batch's phase failed transiently: the batch waits, then runs that phase again (the job goes on). */
  | { type: 'batch.retrying'; batch: string; phase: string; attempt: number; maxAttempts: number; retryAt: number; error: ErrorInfo };

const phaseFailed = phaseFailedIn('replication');

/**
 * Defaults for the CLI and policies. A batch is pushed as soon as its own blobs are in; 16
 * batches under way keep a far registry's round trips overlapped. Batches of 4 tags rather than
 * 1: as fast over a 40 ms link, and a quarter of the actors and stored steps, which on loopback
 * took a no-op re-sync of 200 tags through `ferry serve` from 0.97 to 0.38 s (README,
 * Performance). 8 blobs in flight (for the whole job) keep both registries busy when blobs are
 * small; a job then holds at most 8 chunk buffers (16 MiB each) for large ones.
 */
export const REPLICATION_DEFAULTS = { batchSize: 4, batchesInFlight: 16, blobConcurrency: 8 } as const;

const batchOutput = ({ event }: { event: { output?: unknown } }) => event.output as BatchOutput;

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
    copyBatch: batchMachine,
    waitForBackoff: provided<void, BackoffInput>('waitForBackoff'),
  },
  guards: {
    batchFailed: (_, batch: BatchOutput) => batch.error !== undefined,
    lastBatch: ({ context }, batch: BatchOutput) => context.pending.length === 0 && context.batches.every((id) => id === batch.id),
    nothingToCopy: ({ context }) => context.pending.length === 0,
    canRetry: ({ context }, error: ErrorInfo) => canRetry(context, error),
  },
  actions: {
    queueTags: enqueueActions(({ context, enqueue }, output: InitializeOutput) => {
      const pending = context.job.items ?? output.tags.map((tag) => ({ source: tag, target: tag }));
      enqueue.assign({ pending, attempt: 0, progress: { ...context.progress, tagsTotal: pending.length } });
      if (output.selection) enqueue.emit({ type: 'tags.selected', ...output.selection });
    }),
    resetAttempts: assign({ attempt: 0 }),
    /** Starts batches of the pending items until as many are under way as the job allows. */
    startBatches: enqueueActions(({ context, enqueue }) => {
      const { job } = context;
      let { pending, started } = context;
      const batches = [...context.batches];
      while (pending.length > 0 && batches.length < job.batchesInFlight) {
        const id = `batch-${++started}`;
        enqueue.spawnChild('copyBatch', { id, input: { id, job, items: pending.slice(0, job.batchSize) } });
        pending = pending.slice(job.batchSize);
        batches.push(id);
      }
      enqueue.assign({ pending, started, batches });
    }),
    countBatch: assign(({ context }, batch: BatchOutput) => {
      const progress = { ...context.progress };
      for (const [key, value] of Object.entries(batch.progress) as Array<[keyof ReplicationProgress, number]>) if (key !== 'tagsTotal') progress[key] += value;
      return { batches: context.batches.filter((id) => id !== batch.id), progress };
    }),
    /** Leaving `copying` (done, failed, STOP) ends the batches still under way, aborting their requests. */
    stopBatches: enqueueActions(({ context, enqueue }) => {
      for (const id of context.batches) enqueue.stopChild(id);
    }),
    scheduleRetry: assign(({ context }, error: ErrorInfo) => scheduleRetry(context, error)),
    fail: assign(({ context }, error: ErrorInfo) => fail(context, error)),
    /** A batch gave up: its error already says after how many attempts. */
    failWith: assign((_, error: ErrorInfo) => ({ error, retryAt: undefined })),
  },
}).createMachine({
  id: 'replication',
  // Raise it when a change makes snapshots stored by the previous definition unsafe to restore.
  version: '4',
  initial: 'pending',
  context: ({ input }) => ({
    job: input,
    pending: [],
    batches: [],
    started: 0,
    progress: { ...NO_PROGRESS },
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
            onDone: [
              { guard: 'nothingToCopy', target: '#replication.finished' },
              { target: 'copying', actions: 'resetAttempts' },
            ],
          },
        },
        copying: {
          entry: 'startBatches',
          exit: 'stopBatches',
          on: {
            'xstate.done.actor.*': [
              {
                guard: { type: 'batchFailed', params: batchOutput },
                target: '#replication.error',
                actions: [
                  { type: 'countBatch', params: batchOutput },
                  { type: 'failWith', params: ({ event }) => batchOutput({ event }).error! },
                ],
              },
              { guard: { type: 'lastBatch', params: batchOutput }, target: '#replication.finished', actions: { type: 'countBatch', params: batchOutput } },
              { actions: [{ type: 'countBatch', params: batchOutput }, 'startBatches'] },
            ],
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

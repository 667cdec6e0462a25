import { assign, setup } from 'xstate';
import type { BackoffInput } from '../actors/backoff.js';
import type { DeleteEvent, DeleteInput, DeleteOutput } from '../actors/delete.js';
import type { InitializeInput, InitializeOutput } from '../actors/initialize.js';
import type { Location } from '../actors/types.js';
import type { ErrorInfo } from '../services/registry/errors.js';
import type { TagFilter } from '../services/tag-filter.js';
import { provided } from './provided.js';
import { canRetry, fail, phaseFailedIn, retrying, scheduleRetry, type RetryContext, type RetryPolicy } from './retry.js';

export interface DeletionInput {
  destination: Location;
  /** Explicit tags; otherwise every destination tag that passes the filter. */
  tags?: string[];
  /** Manifests to delete by digest (a deletion replicated from the source), instead of tags. */
  digests?: string[];
  tagFilter: TagFilter;
  concurrency: number;
  retry: RetryPolicy;
}

export interface DeletionProgress {
  tagsTotal: number;
  tagsDeleted: number;
  tagsAbsent: number;
  /** Referrers deleted with their subjects: counted apart, tags are what the job was asked for. */
  referrersDeleted: number;
}

export interface DeletionContext extends RetryContext {
  job: DeletionInput;
  tags: string[];
  progress: DeletionProgress;
}

const phaseFailed = phaseFailedIn('deletion');

export const deletionMachine = setup({
  types: {
    input: {} as DeletionInput,
    context: {} as DeletionContext,
    events: {} as { type: 'START' } | { type: 'STOP' },
  },
  actors: {
    resolveTags: provided<InitializeOutput, InitializeInput>('resolveTags'),
    deleteTags: provided<DeleteOutput, DeleteInput, DeleteEvent>('deleteTags'),
    waitForBackoff: provided<void, BackoffInput>('waitForBackoff'),
  },
  guards: {
    canRetry: ({ context }, error: ErrorInfo) => canRetry(context, error),
  },
  actions: {
    queueTags: assign(({ context }, output: InitializeOutput) => ({
      tags: output.tags,
      attempt: 0,
      progress: { ...context.progress, tagsTotal: output.tags.length },
    })),
    countDeleted: assign(({ context }, output: DeleteOutput) => ({
      attempt: 0,
      progress: { ...context.progress, tagsDeleted: output.deleted.length, tagsAbsent: output.absent.length, referrersDeleted: output.referrersDeleted },
    })),
    scheduleRetry: assign(({ context }, error: ErrorInfo) => scheduleRetry(context, error)),
    fail: assign(({ context }, error: ErrorInfo) => fail(context, error)),
  },
}).createMachine({
  id: 'deletion',
  // Raise it when a change makes snapshots stored by the previous definition unsafe to restore.
  // 2: referrers are deleted with their subjects and counted (referrersDeleted), which 1's progress lacks.
  version: '2',
  initial: 'pending',
  context: ({ input }) => ({
    job: input,
    tags: [],
    progress: { tagsTotal: 0, tagsDeleted: 0, tagsAbsent: 0, referrersDeleted: 0 },
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
              registries: [job.destination.registry],
              list: job.destination,
              ...(job.tags || job.digests ? { tags: [...(job.tags ?? []), ...(job.digests ?? [])] } : {}),
              filter: job.tagFilter,
              absentRepository: 'empty' as const,
            }),
            onDone: { target: 'delete', actions: { type: 'queueTags', params: ({ event }) => event.output } },
          },
        },
        delete: {
          invoke: {
            id: 'delete',
            src: 'deleteTags',
            onError: phaseFailed,
            input: ({ context: { job, tags } }) => ({ destination: job.destination, references: tags, concurrency: job.concurrency }),
            onDone: { target: '#deletion.finished', actions: { type: 'countDeleted', params: ({ event }) => event.output } },
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

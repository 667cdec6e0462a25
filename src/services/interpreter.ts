import { createActor, type Actor, type ActorOptions, type AnyActorRef, type AnyStateMachine, type InputFrom, type InspectionEvent, type Snapshot } from 'xstate';
import type { Logger } from 'pino';
import { Cleanups } from './cleanups.js';
import { deletionActors, replicationActors } from '../actors/index.js';
import type { TransferEvent } from '../actors/transfer-blob.js';
import type { DeleteEvent } from '../actors/delete.js';
import { deletionMachine, type DeletionInput } from '../machines/deletion.js';
import { replicationMachine, type ReplicationEmitted, type ReplicationInput } from '../machines/replication.js';
import type { BlobLocator } from './blob-locator.js';
import { DEFAULT_BLOB_COPY, type TransferTuning } from './copy-blob.js';
import type { JobRuntime } from './job-runtime.js';
import { RateLimiter } from './rate-limit.js';
import { Slots } from './slots.js';
import type { Registries } from './registry/registries.js';

/** What the jobs of one process share. */
export interface Environment {
  registries: Registries;
  locator: BlobLocator;
  logger: Logger;
  transfer?: TransferTuning;
  /** Where jobs' cleanups run, for whoever closes `registries` to wait for them. */
  cleanups?: Cleanups;
}

export type JobEvent = ReplicationEmitted | TransferEvent | DeleteEvent;

export interface RunOptions {
  /** A persisted snapshot to resume instead of starting from `pending`. */
  snapshot?: Snapshot<unknown>;
  inspect?: (event: InspectionEvent) => void;
  /** Events the job emits: tags planned, copied, unchanged; blob progress; tags and referrers deleted. */
  onEvent?: (event: JobEvent) => void;
  /** The persistence barrier: each phase waits for it before its side effects (none: no store). */
  durable?: (signal?: AbortSignal) => Promise<void>;
  /** The job's own logger, for what its actors log; the environment's when left out. */
  logger?: Logger;
}

export type ReplicationActor = Actor<typeof replicationMachine>;
export type DeletionActor = Actor<typeof deletionMachine>;

function runtimeFor(environment: Environment, options: RunOptions, transfers: Pick<JobRuntime, 'blobSlots' | 'bandwidth'> = { blobSlots: new Slots(1) }): JobRuntime {
  return {
    ...transfers,
    durable: options.durable ?? (async () => {}),
    registries: environment.registries,
    locator: environment.locator,
    cleanups: environment.cleanups ?? new Cleanups(),
    logger: options.logger ?? environment.logger,
    transfer: environment.transfer ?? DEFAULT_BLOB_COPY,
    blobs: new Map(),
    settling: new Map(),
    transferred: new Map(),
    manifests: new Map(),
    resolved: new Map(),
    referrers: new Map(),
  };
}

export function createReplication(input: ReplicationInput, environment: Environment, options: RunOptions = {}): ReplicationActor {
  const transfers = { blobSlots: new Slots(input.blobConcurrency), ...(input.bandwidthKiBps ? { bandwidth: new RateLimiter(input.bandwidthKiBps * 1024) } : {}) };
  return jobActor(replicationMachine.provide({ actors: replicationActors(runtimeFor(environment, options, transfers)) }), input, options);
}

export function createDeletion(input: DeletionInput, environment: Environment, options: RunOptions = {}): DeletionActor {
  return jobActor(deletionMachine.provide({ actors: deletionActors(runtimeFor(environment, options)) }), input, options);
}

function jobActor<TMachine extends AnyStateMachine>(machine: TMachine, input: InputFrom<TMachine>, options: RunOptions): Actor<TMachine> {
  const actor = createActor(machine, {
    input,
    ...(options.snapshot ? { snapshot: options.snapshot } : {}),
    ...(options.inspect ? { inspect: options.inspect } : {}),
  } as ActorOptions<TMachine>);
  forwardEvents(actor, options.onEvent);
  return actor;
}

/** The events the job's actor emits, and those of its batches and their phase actors as they start. */
function forwardEvents(actor: AnyActorRef, onEvent: ((event: JobEvent) => void) | undefined): void {
  if (!onEvent) return;
  const listening = new WeakSet<AnyActorRef>();
  const follow = (ref: AnyActorRef) => {
    if (listening.has(ref)) return;
    listening.add(ref);
    ref.on('*', (event) => onEvent(event as JobEvent));
    const children = () => Object.values((ref.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> }).children ?? {});
    // A phase actor's error is its machine's to handle: this observer only looks for children.
    ref.subscribe({
      next: () => {
        for (const child of children()) if (child) follow(child);
      },
      error: () => {},
    });
    for (const child of children()) if (child) follow(child);
  };
  follow(actor);
}

import type { PullManifestOutput } from '../../src/actors/pull-manifest.js';
import type { PushManifestOutput } from '../../src/actors/push-manifest.js';
import type { TransferBlobOutput } from '../../src/actors/transfer-blob.js';
import type { TagPlan } from '../../src/actors/types.js';
import { deletionMachine, type DeletionInput } from '../../src/machines/deletion.js';
import type { AnyMachineSnapshot } from 'xstate';
import { batchMachine, NO_PROGRESS, type BatchInput, type BatchOutput } from '../../src/machines/batch.js';
import { replicationMachine, type ReplicationContext, type ReplicationInput } from '../../src/machines/replication.js';
import { replicationInput } from '../support/ferry.js';
import { EVERY_TAG, globFilter } from '../../src/services/tag-filter.js';
import { machineModel } from './machine-model.js';
import type { PathSpec } from './paths.js';

/** One retry: a second transient error in a row uses the attempts up. */
export const MODEL_RETRY = { maxAttempts: 1, baseDelayMs: 200, maxDelayMs: 200 };

const location = { registry: 'model.invalid', repository: 'model/app' };

export const replicationModel = machineModel(replicationMachine);
export const batchModel = machineModel(batchMachine);
export const deletionModel = machineModel(deletionMachine);

/** The tag filter of the job paths whose source has nothing to copy (check ends the job). */
export const NOTHING = globFilter(['no-such-tag']);

/**
 * The input every model path runs with: one tag per batch, one batch and one blob at a time, as
 * the generated paths take them, and retries that end quickly.
 */
export function modelInput(source: string, destination: string, overrides: Partial<ReplicationInput> = {}): ReplicationInput {
  return replicationInput(source, destination, { batchSize: 1, batchesInFlight: 1, blobConcurrency: 1, retry: MODEL_RETRY, ...overrides });
}

const replicationSpecInput = modelInput(`${location.registry}/${location.repository}`, `${location.registry}/${location.repository}`, { tagFilter: EVERY_TAG });

const plan: TagPlan = { item: { source: 't', target: 't' }, sourceDigest: 'sha256:0', targetDigest: 'sha256:0', manifests: [], referrers: [], blobs: [], missing: [], missingBytes: 0 };
const blob = { mediaType: 'application/octet-stream', digest: 'sha256:1', size: 1 };
const outcome = { item: plan.item, digest: 'sha256:0', sourceDigest: 'sha256:0' };

/** pullManifest's answer for each of its guarded branches: a dry run's plan, all present, blobs missing, only the push left. */
const plans: Record<string, PullManifestOutput> = {
  isDryRun: { plans: [plan], unchanged: [], kept: [], refused: [], failed: [], missing: [blob] },
  alreadyOnDestination: { plans: [], unchanged: [outcome], kept: [], refused: [], failed: [], missing: [] },
  blobsMissing: { plans: [plan], unchanged: [], kept: [], refused: [], failed: [], missing: [blob] },
  default: { plans: [plan], unchanged: [], kept: [], refused: [], failed: [], missing: [] },
};

const outputs: Record<string, unknown> = {
  transferBlob: { copied: 1, mounted: 0, bytes: 1, failed: [] } satisfies TransferBlobOutput,
  pushManifest: { pushed: [outcome], referrers: [], failed: [] } satisfies PushManifestOutput,
  delete: { deleted: ['t'], absent: [] },
};

/** A batch's end as the job sees it: done, or given up with a permanent error. */
function batchEnd(guard: string | null, snapshot: AnyMachineSnapshot): BatchOutput {
  const [id] = (snapshot.context as ReplicationContext).batches;
  const error = { code: 'UNAUTHORIZED' as const, message: 'model: 401 UNAUTHORIZED', transient: false };
  return { id: id!, progress: { ...NO_PROGRESS, tagsCopied: 1 }, ...(guard === 'batchFailed' ? { error } : {}) };
}

/** The job's own paths: its batches are events here (each one's end), their own paths are the batch machine's. */
export const replicationSpec: PathSpec = {
  model: replicationModel,
  inputs: { normal: replicationSpecInput, 'dry run': { ...replicationSpecInput, dryRun: true }, 'nothing to copy': { ...replicationSpecInput, tagFilter: NOTHING } },
  output: (actor, guard, snapshot) => {
    if (actor === '*') return batchEnd(guard, snapshot);
    // Two tags, so that a batch can end with another still to start.
    if (actor === 'initialize') return { tags: (snapshot.context as ReplicationContext).job.tagFilter === NOTHING ? [] : ['t', 'u'] };
    return outputs[actor];
  },
};

const batchSpecInput: BatchInput = { id: 'batch-1', job: replicationSpecInput, items: [plan.item] };

export const batchSpec: PathSpec = {
  model: batchModel,
  inputs: { normal: batchSpecInput, 'dry run': { ...batchSpecInput, job: { ...replicationSpecInput, dryRun: true } } },
  output: (actor, guard) => (actor === 'pullManifest' ? plans[guard ?? 'default'] : outputs[actor]),
};

const deletionInput: DeletionInput = { destination: location, tagFilter: EVERY_TAG, concurrency: 1, retry: MODEL_RETRY };

export const deletionSpec: PathSpec = {
  model: deletionModel,
  inputs: { normal: deletionInput },
  output: (actor) => (actor === 'initialize' ? { tags: ['t'] } : outputs[actor]),
};

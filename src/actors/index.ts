import { batchMachine } from '../machines/batch.js';
import type { JobRuntime } from '../services/job-runtime.js';
import { waitForBackoff } from './backoff.js';
import { checkAccess } from './check.js';
import { deleteTags } from './delete.js';
import { resolveTags } from './initialize.js';
import { planBatch } from './pull-manifest.js';
import { pushManifests } from './push-manifest.js';
import { copyBlobs } from './transfer-blob.js';

/** The implementations behind the names a batch of a replication invokes. */
export function batchActors(runtime: JobRuntime) {
  return {
    planBatch: planBatch(runtime),
    copyBlobs: copyBlobs(runtime),
    pushManifests: pushManifests(runtime),
    waitForBackoff: waitForBackoff(runtime),
  };
}

/** The implementations behind the names the replication machine invokes: its batches run the batch machine with theirs. */
export function replicationActors(runtime: JobRuntime) {
  return {
    resolveTags: resolveTags(runtime),
    checkAccess: checkAccess(runtime),
    copyBatch: batchMachine.provide({ actors: batchActors(runtime) }),
    waitForBackoff: waitForBackoff(runtime),
  };
}

export function deletionActors(runtime: JobRuntime) {
  return {
    resolveTags: resolveTags(runtime),
    deleteTags: deleteTags(runtime),
    waitForBackoff: waitForBackoff(runtime),
  };
}

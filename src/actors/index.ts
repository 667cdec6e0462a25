import type { JobRuntime } from '../services/job-runtime.js';
import { waitForBackoff } from './backoff.js';
import { checkAccess } from './check.js';
import { deleteTags } from './delete.js';
import { resolveTags } from './initialize.js';
import { planBatch } from './pull-manifest.js';
import { pushManifests } from './push-manifest.js';
import { copyBlobs } from './transfer-blob.js';

/** The implementations behind the names the replication machine invokes. */
export function replicationActors(runtime: JobRuntime) {
  return {
    resolveTags: resolveTags(runtime),
    checkAccess: checkAccess(runtime),
    planBatch: planBatch(runtime),
    copyBlobs: copyBlobs(runtime),
    pushManifests: pushManifests(runtime),
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

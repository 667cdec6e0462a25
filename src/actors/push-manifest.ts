import { phase } from './phase.js';
import { loadManifest, markPresent, openRepository, type JobRuntime } from '../services/job-runtime.js';
import { headBlob } from '../services/registry/blob.js';
import { RegistryError } from '../services/registry/errors.js';
import { putManifest, type Manifest } from '../services/registry/manifest.js';
import type { Repository } from '../services/registry/repository.js';
import { deriveIndex, selectPlatforms } from '../services/platforms.js';
import type { Location, ManifestRef, TagOutcome, TagPlan } from './types.js';

export interface PushManifestInput {
  source: Location;
  destination: Location;
  plans: TagPlan[];
}

export interface PushManifestOutput {
  pushed: TagOutcome[];
}

/**
 * Pushes each plan's manifests, children first, the root last at the target tag. A plan
 * whose blobs are not all known to be on the destination is not pushed.
 */
export const pushManifests = (runtime: JobRuntime) =>
  phase<PushManifestOutput, PushManifestInput>(runtime, async ({ input, signal }) => {
    const source = await openRepository(runtime, input.source, 'pull', signal);
    const destination = await openRepository(runtime, input.destination, 'push', signal);
    const pushed = await Promise.all(
      input.plans.map(async (plan): Promise<TagOutcome> => {
        await verifyBlobs(runtime, destination, plan, signal);
        const last = plan.manifests.length - 1;
        for (const [index, ref] of plan.manifests.entries()) {
          const manifest = await manifestBytes(runtime, source, plan, ref, signal);
          await putManifest(destination, index === last ? plan.item.target : ref.digest, manifest, signal);
        }
        return { item: plan.item, digest: plan.targetDigest, sourceDigest: plan.sourceDigest };
      }),
    );
    return { pushed };
  });

async function verifyBlobs(runtime: JobRuntime, destination: Repository, plan: TagPlan, signal: AbortSignal): Promise<void> {
  await Promise.all(
    plan.blobs
      .filter((blob) => runtime.blobs.get(blob.digest) !== 'present')
      .map(async (blob) => {
        if ((await headBlob(destination, blob.digest, signal)) === undefined) {
          throw new RegistryError('PROTOCOL', `refusing to push ${destination.ref(plan.item.target)}: blob ${blob.digest} is not on the destination`);
        }
        markPresent(runtime, destination, blob.digest);
      }),
  );
}

/** From the job's cache; after a restore, fetched again (a derived index rebuilt). */
async function manifestBytes(runtime: JobRuntime, source: Repository, plan: TagPlan, ref: ManifestRef, signal: AbortSignal): Promise<Manifest> {
  const cached = runtime.manifests.get(ref.digest);
  if (cached) return cached;
  if (plan.derived && ref.digest === plan.targetDigest) {
    const index = await loadManifest(runtime, source, plan.derived.from, signal);
    if (index.parsed.kind !== 'index') throw new RegistryError('INVALID_MANIFEST', `${source.ref(plan.derived.from)}: no longer an index`);
    const derived = deriveIndex(index, selectPlatforms(index.parsed.manifests, plan.derived.platforms, source.ref(plan.item.source)), source.ref(plan.item.source));
    if (derived.digest !== ref.digest) throw new RegistryError('DIGEST_MISMATCH', `${source.ref(plan.item.source)}: rebuilt platform index has digest ${derived.digest}, planned ${ref.digest}`);
    runtime.manifests.set(derived.digest, derived);
    return derived;
  }
  return loadManifest(runtime, source, ref.digest, signal);
}

import { phase } from './phase.js';
import { loadManifest, markPresent, openRepository, type JobRuntime } from '../services/job-runtime.js';
import { headBlob } from '../services/registry/blob.js';
import { RegistryError } from '../services/registry/errors.js';
import { addToFallbackIndex, indexEntry, type IndexEntry } from '../services/registry/fallback-index.js';
import { putManifest, type Manifest } from '../services/registry/manifest.js';
import type { Repository } from '../services/registry/repository.js';
import { deriveIndex, selectPlatforms } from '../services/platforms.js';
import { orItemFailure } from './item-failure.js';
import type { FailedTag, Location, ManifestRef, ReferrerOutcome, TagOutcome, TagPlan } from './types.js';

export interface PushManifestInput {
  source: Location;
  destination: Location;
  plans: TagPlan[];
}

export interface PushManifestOutput {
  /** Items whose image was pushed (not those that only lacked referrers). */
  pushed: TagOutcome[];
  referrers: ReferrerOutcome[];
  /** Plans the destination refused, or whose manifests the source no longer serves. */
  failed: FailedTag[];
}

/**
 * Pushes each plan's manifests, children first, then its referrers, each after what it refers
 * to, and the root last at the target tag: the tag appears with its signatures. A plan whose
 * blobs are not all known to be on the destination is not pushed.
 */
export const pushManifests = (runtime: JobRuntime) =>
  phase<PushManifestOutput, PushManifestInput>(runtime, async ({ input, signal }) => {
    const source = await openRepository(runtime, input.source, 'pull', signal);
    const destination = await openRepository(runtime, input.destination, 'push', signal);
    const outcomes = await Promise.all(
      input.plans.map(async (plan) => {
        const result = await orItemFailure(() => pushPlan(runtime, source, destination, plan, signal));
        return 'error' in result ? { failed: { item: plan.item, sourceDigest: plan.sourceDigest, error: result.error }, referrers: [] } : result;
      }),
    );
    return {
      pushed: outcomes.flatMap((o) => ('pushed' in o && o.pushed ? [o.pushed] : [])),
      referrers: outcomes.flatMap((o) => o.referrers),
      failed: outcomes.flatMap((o) => ('failed' in o ? [o.failed] : [])),
    };
  });

/** One plan: the image's manifests, its referrers, then the tag. */
async function pushPlan(runtime: JobRuntime, source: Repository, destination: Repository, plan: TagPlan, signal: AbortSignal) {
  await verifyBlobs(runtime, destination, plan, signal);
  const root = plan.manifests.at(-1);
  // Without referrers the root goes straight to its tag; with them, by digest first.
  for (const ref of plan.referrers.length > 0 ? plan.manifests : plan.manifests.slice(0, -1)) {
    await putManifest(destination, ref.digest, await manifestBytes(runtime, source, plan, ref, signal), signal);
  }
  const referrers = await pushReferrers(runtime, source, destination, plan, signal);
  if (root) await putManifest(destination, plan.item.target, await manifestBytes(runtime, source, plan, root, signal), signal);
  return { pushed: root ? { item: plan.item, digest: plan.targetDigest, sourceDigest: plan.sourceDigest } : undefined, referrers };
}

/**
 * The plan's referrers, in order, cosign's under their tags; those a registry without the
 * referrers API did not index are then listed in their subject's fallback index.
 */
async function pushReferrers(runtime: JobRuntime, source: Repository, destination: Repository, plan: TagPlan, signal: AbortSignal): Promise<ReferrerOutcome[]> {
  const outcomes: ReferrerOutcome[] = [];
  const unindexed = new Map<string, IndexEntry[]>();
  for (const ref of plan.referrers) {
    const manifest = await manifestBytes(runtime, source, plan, ref, signal);
    const { indexedSubject } = await putManifest(destination, ref.tag ?? ref.digest, manifest, signal);
    if (ref.subject === undefined) continue;
    outcomes.push({ item: plan.item, subject: ref.subject, digest: ref.digest, ...(ref.artifactType === undefined ? {} : { artifactType: ref.artifactType }) });
    if (ref.tag === undefined && indexedSubject !== ref.subject) unindexed.set(ref.subject, [...(unindexed.get(ref.subject) ?? []), indexEntry(manifest)]);
  }
  for (const [subject, entries] of unindexed) await addToFallbackIndex(destination, subject, entries, signal);
  return outcomes;
}

async function verifyBlobs(runtime: JobRuntime, destination: Repository, plan: TagPlan, signal: AbortSignal): Promise<void> {
  await Promise.all(
    plan.blobs
      .filter((blob) => runtime.blobs.get(blob.digest) !== 'present')
      .map(async (blob) => {
        if ((await headBlob(destination, blob.digest, signal)) === undefined) {
          throw new RegistryError('NOT_FOUND', `refusing to push ${destination.ref(plan.item.target)}: blob ${blob.digest} is not on the destination`);
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

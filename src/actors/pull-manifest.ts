import { phase } from './phase.js';
import { absentOnDestination, loadManifest, markPresent, oneBatchAtATime, openRepository, referrersOf, type JobRuntime } from '../services/job-runtime.js';
import { headBlob } from '../services/registry/blob.js';
import { probeReferrersApi } from '../services/registry/referrers.js';
import { RegistryError } from '../services/registry/errors.js';
import { getManifest, headManifest, type Manifest, type ManifestHead } from '../services/registry/manifest.js';
import type { Descriptor } from '../services/registry/media-types.js';
import type { Repository } from '../services/registry/repository.js';
import { deriveIndex, selectPlatforms } from '../services/platforms.js';
import { findReferrers, notOnDestination } from '../services/referrer-plan.js';
import { signingKey, verifyCosignSignature } from '../services/signatures/cosign.js';
import type { KeyObject } from 'node:crypto';
import { orItemFailure } from './item-failure.js';
import type { DerivedIndex, FailedTag, Location, ManifestRef, ReferrerSelection, RefusedTag, SignatureRequirement, TagOutcome, TagPlan, WorkItem } from './types.js';

export interface PullManifestInput {
  source: Location;
  destination: Location;
  /** The batch's items, compared at once. */
  items: WorkItem[];
  /** `os/arch[/variant]` to keep from indexes; empty keeps them all. */
  platforms: string[];
  /** Replace a target tag that points at another digest. */
  override: boolean;
  referrers: ReferrerSelection;
  requireSignature?: SignatureRequirement;
}

export interface PullManifestOutput {
  /** Items whose target does not hold the wanted digest yet, or whose referrers it lacks. */
  plans: TagPlan[];
  /** Items already at the wanted digest on the destination (their missing referrers planned apart). */
  unchanged: TagOutcome[];
  /** Items not copied: no signature verifies with the required key. */
  refused: RefusedTag[];
  /** Items that failed alone: their manifest (or referrers) missing, corrupt or refused. */
  failed: FailedTag[];
  /** Items whose target points at another digest, left alone because override is off. */
  kept: TagOutcome[];
  /** Blobs of the plans that the destination lacks, each once. */
  missing: Descriptor[];
}

/** Foreign layers live outside the registry; distribution accepts manifests without them. */
const NON_DISTRIBUTABLE = /\.(foreign|nondistributable)\./;

export const planBatch = (runtime: JobRuntime) =>
  phase<PullManifestOutput, PullManifestInput>(runtime, async ({ input, signal }) => {
    const source = await openRepository(runtime, input.source, 'pull', signal);
    const destination = await openRepository(runtime, input.destination, 'push', signal);
    if (input.referrers !== 'none') probeReferrersApi(source, referrersOf(runtime, input.source), signal);
    const compared = await Promise.all(
      input.items.map(async (item): Promise<Compared | FailedTag> => {
        const result = await orItemFailure(() => compare(runtime, source, destination, item, signal));
        return 'error' in result ? { item, error: result.error } : result;
      }),
    );
    const key = input.requireSignature && signingKey(input.requireSignature.key, input.requireSignature.source);
    const outcomes = await Promise.all(compared.map((c) => ('error' in c ? c : settleItem(runtime, source, destination, c, input, key, signal))));

    const plans = outcomes.filter((o): o is TagPlan => 'manifests' in o);
    const settled = outcomes.filter((o): o is Settled => 'settled' in o);
    plans.push(...settled.flatMap((o) => (o.referrers ? [o.referrers] : [])));
    const unchanged = settled.filter((o) => o.settled === 'unchanged').map(outcome);
    const kept = settled.filter((o) => o.settled === 'kept').map(outcome);
    const refused = outcomes.filter((o): o is RefusedTag => 'reason' in o);
    const failed = outcomes.filter((o): o is FailedTag => 'error' in o);
    const blobs = new Map(plans.flatMap((p) => p.blobs).map((b) => [b.digest, b]));
    await Promise.all(
      [...blobs.values()]
        .filter((blob) => !runtime.blobs.has(blob.digest))
        .map((blob) =>
          oneBatchAtATime(runtime, blob.digest, signal, async () => {
            if (runtime.blobs.has(blob.digest)) return;
            if ((await headBlob(destination, blob.digest, signal)) === undefined) runtime.blobs.set(blob.digest, 'missing');
            else markPresent(runtime, destination, blob.digest);
          }),
        ),
    );
    const missing = [...blobs.values()].filter((b) => runtime.blobs.get(b.digest) === 'missing');
    for (const plan of plans) {
      const absent = plan.blobs.filter((b) => runtime.blobs.get(b.digest) === 'missing');
      plan.missing = absent.map((b) => b.digest);
      plan.missingBytes = absent.reduce((sum, b) => sum + b.size, 0);
    }
    return { plans, unchanged, kept, refused, failed, missing };
  });

/**
 * Where one item stands: to copy (with its referrers), settled (unchanged, perhaps lacking
 * referrers; or kept), refused for want of a verified signature, or failed alone.
 */
async function settleItem(
  runtime: JobRuntime,
  source: Repository,
  destination: Repository,
  compared: Compared,
  input: PullManifestInput,
  key: KeyObject | undefined,
  signal: AbortSignal,
): Promise<TagPlan | Settled | RefusedTag | FailedTag> {
  const result = await orItemFailure(async (): Promise<TagPlan | Settled | RefusedTag> => {
    const planned = await planItem(runtime, source, compared, input, signal);
    if ('settled' in planned) {
      if (planned.settled === 'kept') return planned;
      const referrers = await missingReferrers(runtime, source, destination, outcome(planned), input, signal);
      return referrers ? { ...planned, referrers } : planned;
    }
    if (key) {
      const check = await verifyCosignSignature(source, planned.sourceDigest, key, signal);
      if (!check.verified) return { item: planned.item, digest: planned.sourceDigest, sourceDigest: planned.sourceDigest, reason: check.reason };
    }
    return withReferrers(runtime, source, planned, input, signal);
  });
  return 'error' in result ? { item: compared.item, sourceDigest: compared.head.digest, error: result.error } : result;
}

/**
 * The plan with the referrers of every manifest it pushes that exists on the source (a
 * platform index derived here has none), and their blobs.
 */
async function withReferrers(runtime: JobRuntime, source: Repository, plan: TagPlan, input: PullManifestInput, signal: AbortSignal): Promise<TagPlan> {
  const subjects = plan.manifests.map((m) => m.digest).filter((digest) => !(plan.derived && digest === plan.targetDigest));
  const referrers = await findReferrers(runtime, source, input.source, subjects, input.referrers, signal);
  return { ...plan, referrers, blobs: [...new Map([...plan.blobs, ...blobsOf(runtime, referrers)].map((b) => [b.digest, b])).values()] };
}

/**
 * For an image already at its target: the referrers the destination lacks (signed or given an
 * SBOM after it was copied, or a copy stopped before them), as a plan that pushes only them.
 */
async function missingReferrers(runtime: JobRuntime, source: Repository, destination: Repository, unchanged: TagOutcome, input: PullManifestInput, signal: AbortSignal): Promise<TagPlan | undefined> {
  const found = await findReferrers(runtime, source, input.source, [unchanged.digest], input.referrers, signal);
  if (found.length === 0) return undefined;
  const referrers = await notOnDestination(runtime, destination, input.destination, found, signal);
  if (referrers.length === 0) return undefined;
  return { ...unchanged, targetDigest: unchanged.digest, manifests: [], referrers, blobs: blobsOf(runtime, referrers), missing: [], missingBytes: 0 };
}

/** The blobs of manifests in the job's cache (fetched while planning), each once. */
function blobsOf(runtime: JobRuntime, refs: ManifestRef[]): Descriptor[] {
  const blobs = new Map<string, Descriptor>();
  for (const ref of refs) {
    const parsed = runtime.manifests.get(ref.digest)?.parsed;
    if (parsed?.kind !== 'image') continue;
    for (const blob of [parsed.config, ...parsed.layers]) if (!NON_DISTRIBUTABLE.test(blob.mediaType)) blobs.set(blob.digest, blob);
  }
  return [...blobs.values()];
}

/**
 * An item that needs no push: its target already holds the digest (`referrers`: a plan for
 * those of its referrers the destination lacks), or is kept as it is.
 */
type Settled = TagOutcome & { settled: 'unchanged' | 'kept'; referrers?: TagPlan };

const outcome = ({ item, digest, sourceDigest }: TagOutcome): TagOutcome => ({ item, digest, sourceDigest });

/** An item with what the source and the destination hold for it. */
interface Compared {
  item: WorkItem;
  head: ManifestHead;
  existing: ManifestHead | undefined;
}

/**
 * HEADs both sides (HEADs cost no pull quota). A target tag the destination lacks needs no
 * HEAD, and its source manifest, which will be copied, is fetched at once.
 */
async function compare(runtime: JobRuntime, source: Repository, destination: Repository, item: WorkItem, signal: AbortSignal): Promise<Compared> {
  if (item.sourceTag !== undefined) await checkSourceTag(source, item.sourceTag, item.source, signal);
  if (absentOnDestination(runtime, item.target)) {
    // Ranking the tags by creation time may have fetched it already: a pull saved where pulls are rationed.
    const resolved = runtime.resolved.get(item.source);
    const manifest = (resolved && runtime.manifests.get(resolved)) || (await getManifest(source, item.source, signal));
    runtime.manifests.set(manifest.digest, manifest);
    return { item, head: { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.length }, existing: undefined };
  }
  const [head, existing] = await Promise.all([headManifest(source, item.source, signal), headManifest(destination, item.target, signal)]);
  if (!head) throw new RegistryError('NOT_FOUND', `${source.ref(item.source)}: manifest not found on the source`);
  return { item, head, existing };
}

/** `app:1.0@sha256:…` says 1.0 is that digest: copying it when 1.0 has moved would copy something else than asked. */
async function checkSourceTag(source: Repository, tag: string, digest: string, signal: AbortSignal): Promise<void> {
  const head = await headManifest(source, tag, signal);
  if (!head) throw new RegistryError('NOT_FOUND', `${source.ref(tag)}: manifest not found on the source (given with ${digest})`);
  if (head.digest !== digest) throw new RegistryError('DIGEST_MISMATCH', `${source.ref(tag)} is ${head.digest}, not ${digest} as given with it`);
}

async function planItem(
  runtime: JobRuntime,
  source: Repository,
  { item, head, existing }: Compared,
  { platforms, override }: { platforms: string[]; override: boolean },
  signal: AbortSignal,
): Promise<TagPlan | Settled> {
  const settle = (settled: Settled['settled'], digest: string): Settled => ({ item, digest, sourceDigest: head.digest, settled });
  if (platforms.length === 0 && existing?.digest === head.digest) return settle('unchanged', head.digest);
  // Without a platform filter the target digest is the source's: no GET needed to keep a tag.
  if (platforms.length === 0 && existing && !override) return settle('kept', existing.digest);

  const root = await loadManifest(runtime, source, head.digest, signal);
  let target = root;
  let derived: DerivedIndex | undefined;
  if (platforms.length > 0 && root.parsed.kind === 'index') {
    const selected = selectPlatforms(root.parsed.manifests, platforms, source.ref(item.source));
    if (selected.length === 1) {
      target = await loadManifest(runtime, source, selected[0]!.digest, signal);
    } else {
      target = deriveIndex(root, selected, source.ref(item.source));
      runtime.manifests.set(target.digest, target);
      derived = { from: root.digest, platforms };
    }
  }
  if (existing?.digest === target.digest) return settle('unchanged', target.digest);
  if (existing && !override) return settle('kept', existing.digest);

  const collected: Manifest[] = [];
  await collect(runtime, source, target, collected, signal);
  const manifests = collected.map((m): ManifestRef => ({ digest: m.digest, mediaType: m.mediaType }));
  return {
    item,
    sourceDigest: head.digest,
    targetDigest: target.digest,
    manifests,
    ...(derived ? { derived } : {}),
    referrers: [],
    blobs: blobsOf(runtime, manifests),
    missing: [],
    missingBytes: 0,
  };
}

/** Depth first, so every child comes before the index that references it. */
async function collect(runtime: JobRuntime, source: Repository, manifest: Manifest, into: Manifest[], signal: AbortSignal): Promise<void> {
  if (manifest.parsed.kind === 'index') {
    const children = await Promise.all(manifest.parsed.manifests.map((d) => loadManifest(runtime, source, d.digest, signal)));
    for (const child of children) await collect(runtime, source, child, into, signal);
  }
  into.push(manifest);
}

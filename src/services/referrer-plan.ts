import type { Location, ReferrerRef, ReferrerSelection } from '../actors/types.js';
import { loadManifest, referrersOf, type JobRuntime } from './job-runtime.js';
import type { Manifest } from './registry/manifest.js';
import { listReferrers, type Referrer } from './registry/referrers.js';
import type { Repository } from './registry/repository.js';

/** Signatures of SBOMs of attestations...: deeper than anyone attaches, shallow enough to stop a cycle's cost. */
const MAX_DEPTH = 8;

/**
 * The referrers of `subjects` on the source that the selection keeps, and theirs in turn (a
 * signature of an SBOM), in push order: each after what it refers to, an index's manifests
 * just before it. Their manifests are fetched into the job's cache.
 */
export async function findReferrers(
  runtime: JobRuntime,
  source: Repository,
  location: Location,
  subjects: string[],
  selection: ReferrerSelection,
  signal: AbortSignal,
): Promise<ReferrerRef[]> {
  if (selection === 'none') return [];
  const artifactTypes = selection === 'all' ? [] : selection;
  const known = referrersOf(runtime, location);
  const refs: ReferrerRef[] = [];
  const seen = new Set(subjects);
  let level = subjects;
  for (let depth = 0; depth < MAX_DEPTH && level.length > 0; depth += 1) {
    const found = await Promise.all(level.map(async (subject) => ({ subject, referrers: await listReferrers(source, subject, { artifactTypes, signal, known }) })));
    const next: string[] = [];
    for (const { subject, referrers } of found) {
      for (const referrer of referrers) {
        if (seen.has(referrer.digest)) continue;
        seen.add(referrer.digest);
        const manifest = await loadManifest(runtime, source, referrer.digest, signal);
        for (const child of await childrenOf(runtime, source, manifest, signal)) refs.push({ digest: child.digest, mediaType: child.mediaType });
        refs.push(referrerRef(subject, referrer, manifest));
        next.push(referrer.digest);
      }
    }
    level = next;
  }
  return refs;
}

/**
 * Those of `refs` the destination does not list from their subjects yet, with what they
 * need: a referrer's index manifests go with it. A referrer the destination holds but does
 * not list (a copy stopped before its fallback index was updated) counts as missing.
 */
export async function notOnDestination(runtime: JobRuntime, destination: Repository, location: Location, refs: ReferrerRef[], signal: AbortSignal): Promise<ReferrerRef[]> {
  const known = referrersOf(runtime, location);
  const subjects = [...new Set(refs.flatMap((ref) => (ref.subject ? [ref.subject] : [])))];
  const listed = new Map(
    await Promise.all(subjects.map(async (subject) => [subject, new Set((await listReferrers(destination, subject, { signal, known })).map((r) => r.digest))] as const)),
  );
  const missing: ReferrerRef[] = [];
  let pending: ReferrerRef[] = [];
  for (const ref of refs) {
    pending.push(ref);
    if (ref.subject === undefined) continue;
    if (!listed.get(ref.subject)?.has(ref.digest)) missing.push(...pending);
    pending = [];
  }
  return missing;
}

function referrerRef(subject: string, referrer: Referrer, manifest: Manifest): ReferrerRef {
  return {
    digest: manifest.digest,
    mediaType: manifest.mediaType,
    subject,
    ...(referrer.artifactType === undefined ? {} : { artifactType: referrer.artifactType }),
    ...(referrer.tag === undefined ? {} : { tag: referrer.tag }),
  };
}

/** An index referrer's manifests, depth first, each before the index that lists it. */
async function childrenOf(runtime: JobRuntime, source: Repository, manifest: Manifest, signal: AbortSignal): Promise<Manifest[]> {
  if (manifest.parsed.kind !== 'index') return [];
  const children: Manifest[] = [];
  for (const descriptor of manifest.parsed.manifests) {
    const child = await loadManifest(runtime, source, descriptor.digest, signal);
    children.push(...(await childrenOf(runtime, source, child, signal)), child);
  }
  return children;
}

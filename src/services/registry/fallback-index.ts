import { RegistryError } from './errors.js';
import { getManifest, putManifest, type Manifest } from './manifest.js';
import { OCI_INDEX } from './media-types.js';
import { digestOf } from './digest.js';
import { fallbackTag, isStringRecord } from './referrers.js';
import type { Repository } from './repository.js';

/** A referrer as the fallback index lists it: its descriptor, artifact type and annotations. */
export interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/**
 * How the fallback index lists a referrer: its artifact type (the config's media type when it
 * has none) and annotations, as a registry with the referrers API would answer them.
 */
export function indexEntry(manifest: Manifest): IndexEntry {
  const document = JSON.parse(manifest.bytes.toString('utf8')) as { artifactType?: unknown; config?: { mediaType?: unknown }; annotations?: unknown };
  const artifactType = typeof document.artifactType === 'string' ? document.artifactType : manifest.parsed.kind === 'image' ? manifest.parsed.config.mediaType : undefined;
  const annotations = document.annotations;
  return {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.bytes.length,
    ...(artifactType === undefined ? {} : { artifactType }),
    ...(isStringRecord(annotations) ? { annotations } : {}),
  };
}

/** Writers that keep overwriting each other's additions: give up and let the job retry later. */
const ATTEMPTS = 3;

/**
 * Lists `entries` in the fallback index of `subject` (the image index tagged `sha256-<hex>`),
 * which a registry without the referrers API leaves to its clients. It is a read-modify-write:
 * what others listed stays, and the index is read back, so that a writer that replaced it in
 * between is noticed and the merge done again. Answers how many entries were added.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests-with-subject
 */
export async function addToFallbackIndex(repo: Repository, subject: string, entries: IndexEntry[], signal?: AbortSignal): Promise<number> {
  const tag = fallbackTag(subject);
  const what = `update fallback index ${repo.ref(tag)} of ${subject}`;
  let added = 0;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt += 1) {
    const current = await readIndex(repo, tag, what, signal);
    const listed = new Set(current.manifests.map((m) => m.digest));
    const missing = entries.filter((entry) => !listed.has(entry.digest));
    if (missing.length === 0) return added;
    const bytes = Buffer.from(JSON.stringify({ ...current, manifests: [...current.manifests, ...missing] }));
    await putManifest(repo, tag, { bytes, mediaType: current.mediaType, digest: digestOf(bytes) }, signal);
    added = missing.length;
  }
  const after = await readIndex(repo, tag, what, signal);
  const listed = new Set(after.manifests.map((m) => m.digest));
  if (entries.every((entry) => listed.has(entry.digest))) return added;
  throw new RegistryError('CONFLICT', `${what}: another writer replaced it ${ATTEMPTS} times while ferry added ${entries.map((e) => e.digest).join(', ')}`);
}

interface IndexDocument {
  schemaVersion: number;
  mediaType: string;
  manifests: Array<{ digest: string } & Record<string, unknown>>;
  [field: string]: unknown;
}

/** The index as it is, every field kept; an empty one when there is none yet. */
async function readIndex(repo: Repository, tag: string, what: string, signal?: AbortSignal): Promise<IndexDocument> {
  let manifest;
  try {
    manifest = await getManifest(repo, tag, signal);
  } catch (error) {
    if (error instanceof RegistryError && error.code === 'NOT_FOUND') return { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
    throw error;
  }
  if (manifest.parsed.kind !== 'index') throw new RegistryError('INVALID_MANIFEST', `${what}: ${repo.ref(tag)} is an image manifest, not an index`);
  const document = JSON.parse(manifest.bytes.toString('utf8')) as IndexDocument;
  return { ...document, mediaType: manifest.mediaType };
}

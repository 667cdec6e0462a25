import { header, networkError, responseError } from './client.js';
import { parseDigest } from './digest.js';
import { RegistryError } from './errors.js';
import { getManifest, headManifest } from './manifest.js';
import { OCI_INDEX, parseManifest } from './media-types.js';
import { followPages } from './pages.js';
import type { Repository } from './repository.js';

/** How a referrer was found: the referrers API, the fallback tag schema's index, or a cosign tag. */
export type ReferrerSource = 'api' | 'fallback-tag' | 'cosign-tag';

export interface Referrer {
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  via: ReferrerSource;
  /** The tag it was found under: `sha256-<hex>.sig` for a cosign tag. */
  tag?: string;
}

export interface ListReferrersOptions {
  /** Only referrers of these artifact types; none or empty: all. */
  artifactTypes?: string[];
  signal?: AbortSignal;
  /** What the caller knows of the repository, to spare requests; learnt as the listing goes. */
  known?: RepositoryReferrers;
}

/**
 * What a job knows of a repository's referrers, so that it asks only what it must: with the
 * tags listed, a fallback index or cosign tag that is not among them is not asked for; once
 * the referrers API answered 404, it is not asked again.
 */
export interface RepositoryReferrers {
  tags?: ReadonlySet<string>;
  api?: boolean;
  /** The first listing's request to the API, which listings started meanwhile wait for. */
  probe?: Promise<unknown>;
}

/** cosign's tags beside the subject on registries without referrers: `sha256-<hex>.sig`, `.att`, `.sbom`. */
export const COSIGN_SUFFIXES = ['sig', 'att', 'sbom'] as const;

/**
 * The artifact type cosign itself gives a signature in its OCI 1.1 mode
 * (`--registry-referrers-mode=oci-1-1`), so that one filter selects signatures found either way.
 * `.att` and `.sbom` tags have no such type and are left out by any filter.
 */
export const COSIGN_SIGNATURE_ARTIFACT_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';

/** The tag of the fallback tag schema's index for a subject: `sha256:1a2b...` → `sha256-1a2b...`. */
export function fallbackTag(subjectDigest: string): string {
  const { algorithm, hex } = parseDigest(subjectDigest);
  return `${algorithm}-${hex}`;
}

const REFERRER_TAG = /^(sha256-[0-9a-f]{64})(?:\.(sig|att|sbom))?$/;

/**
 * A fallback index's or a cosign tag (`sha256-<hex>`, `sha256-<hex>.sig`): not an image of its
 * own but what refers to one, copied and deleted with its subject rather than as a tag.
 */
export function isReferrerTag(tag: string): boolean {
  return REFERRER_TAG.test(tag);
}

/**
 * The manifests that refer to `subjectDigest`: from the referrers API, or the fallback tag
 * schema where the registry has no API, plus cosign's tags. Each digest once, API or fallback
 * entries first in the registry's order, then `.sig`, `.att`, `.sbom`.
 */
export async function listReferrers(repo: Repository, subjectDigest: string, options: ListReferrersOptions = {}): Promise<Referrer[]> {
  parseDigest(subjectDigest);
  const what = `list referrers of ${repo.ref(subjectDigest)}`;
  const types = options.artifactTypes?.length ? new Set(options.artifactTypes) : undefined;
  // Settled, not raced: a failure ends the listing only once no request of it is still out.
  const [listedResult, ...cosignResults] = await Promise.allSettled([
    fromApiOrFallback(repo, subjectDigest, what, options),
    ...COSIGN_SUFFIXES.map((suffix) => cosignTag(repo, subjectDigest, suffix, what, options.signal, options.known?.tags)),
  ]);
  const listed = settled(listedResult!);
  const cosign = cosignResults.map(settled);
  const seen = new Set<string>();
  const referrers: Referrer[] = [];
  for (const referrer of [...listed.referrers, ...cosign]) {
    if (referrer === undefined || seen.has(referrer.digest)) continue;
    const filtered = referrer.via === 'api' ? listed.filtered : false;
    if (types && !filtered && !(referrer.artifactType !== undefined && types.has(referrer.artifactType))) continue;
    seen.add(referrer.digest);
    referrers.push(referrer);
  }
  return referrers;
}

/**
 * The digest of `{}`, the OCI empty descriptor's content: the subject a probe asks about. A
 * registry with the referrers API answers 200 for any well-formed digest, held or not, and
 * never 404 (https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers).
 */
const PROBE_SUBJECT = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

/**
 * Learns whether the registry has the referrers API while other requests are out, so that the
 * first listing does not spend a round trip of its own on it. A probe that fails leaves it
 * unknown, and the first listing asks.
 */
export function probeReferrersApi(repo: Repository, known: RepositoryReferrers, signal?: AbortSignal): void {
  if (known.api !== undefined || known.probe) return;
  const what = `probe the referrers API of ${repo.ref()}`;
  known.probe = referrersApi(repo, PROBE_SUBJECT, what, signal ? { signal } : {}).then(
    (listed) => {
      known.api ??= listed !== undefined;
    },
    () => {},
  );
}

function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

interface Listed {
  referrers: Referrer[];
  /** The registry applied the artifactType filter to every page (`OCI-Filters-Applied`). */
  filtered: boolean;
}

async function fromApiOrFallback(repo: Repository, subject: string, what: string, options: ListReferrersOptions): Promise<Listed> {
  const known = options.known;
  if (known?.api === undefined && known?.probe) await known.probe.catch(() => undefined);
  if (known?.api !== false) {
    const asking = referrersApi(repo, subject, what, options);
    if (known?.api === undefined && known) known.probe = asking;
    const fromApi = await asking;
    if (known) known.api = fromApi !== undefined;
    if (fromApi !== undefined) return fromApi;
  }
  if (known?.tags && !known.tags.has(fallbackTag(subject))) return { referrers: [], filtered: false };
  return { referrers: await fallbackIndex(repo, subject, what, options.signal), filtered: false };
}

/** Undefined when the registry has no referrers API (404 on the first page). */
async function referrersApi(repo: Repository, subject: string, what: string, { artifactTypes, signal }: ListReferrersOptions): Promise<Listed | undefined> {
  // The API filters by one artifactType; for several, ask for all and filter here.
  const only = artifactTypes?.length === 1 ? artifactTypes[0] : undefined;
  const first = repo.client.resolve(repo.path(`referrers/${subject}`));
  if (only !== undefined) first.searchParams.set('artifactType', only);
  const referrers: Referrer[] = [];
  let filtered = only !== undefined;
  let supported = true;
  await followPages(first, what, async (url) => {
    const response = await repo.client.send({ method: 'GET', url, scopes: repo.scopes, headers: { accept: OCI_INDEX }, what, ...(signal ? { signal } : {}) });
    // distribution 2.8 (Debian's docker-registry) has no referrers API and answers 404; the
    // spec tells clients to fall back to the tag schema then:
    // https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#unavailable-referrers-api
    if (response.statusCode === 404 && url === first.href) {
      await response.body.dump();
      supported = false;
      return undefined;
    }
    if (response.statusCode !== 200) throw await responseError(response, what);
    // Each page says for itself whether the registry filtered it.
    if (!filtersApplied(header(response, 'oci-filters-applied'))) filtered = false;
    let text: string;
    try {
      text = await response.body.text();
    } catch (error) {
      throw networkError(error, what, signal);
    }
    referrers.push(...indexEntries(Buffer.from(text), header(response, 'content-type'), `${what}: referrers index`, 'api'));
    return response;
  });
  return supported ? { referrers, filtered } : undefined;
}

function filtersApplied(value: string | undefined): boolean {
  return value?.split(',').some((filter) => filter.trim() === 'artifactType') ?? false;
}

/** The index tagged `sha256-<hex>`; none when absent. */
async function fallbackIndex(repo: Repository, subject: string, what: string, signal?: AbortSignal): Promise<Referrer[]> {
  const tag = fallbackTag(subject);
  let manifest;
  try {
    manifest = await getManifest(repo, tag, signal);
  } catch (error) {
    if (error instanceof RegistryError && error.code === 'NOT_FOUND') return [];
    throw withContext(error, `${what} (fallback tag ${tag})`);
  }
  return indexEntries(manifest.bytes, manifest.mediaType, `${what}: fallback index ${repo.ref(tag)}`, 'fallback-tag');
}

async function cosignTag(repo: Repository, subject: string, suffix: string, what: string, signal?: AbortSignal, tags?: ReadonlySet<string>): Promise<Referrer | undefined> {
  const tag = `${fallbackTag(subject)}.${suffix}`;
  if (tags && !tags.has(tag)) return undefined;
  let head;
  try {
    head = await headManifest(repo, tag, signal);
  } catch (error) {
    throw withContext(error, `${what} (cosign tag ${tag})`);
  }
  if (head === undefined) return undefined;
  return {
    digest: head.digest,
    mediaType: head.mediaType,
    size: head.size,
    ...(suffix === 'sig' ? { artifactType: COSIGN_SIGNATURE_ARTIFACT_TYPE } : {}),
    via: 'cosign-tag',
    tag,
  };
}

/** An image index's entries, with the artifactType and annotations parseManifest leaves out. */
function indexEntries(bytes: Buffer, contentType: string | undefined, what: string, via: ReferrerSource): Referrer[] {
  const parsed = parseManifest(bytes, contentType, what);
  if (parsed.kind !== 'index') throw new RegistryError('INVALID_MANIFEST', `${what}: is an image manifest, not an index`);
  const entries = (JSON.parse(bytes.toString('utf8')) as { manifests: Record<string, unknown>[] }).manifests;
  return parsed.manifests.map(({ digest, mediaType, size }, i) => {
    const { artifactType, annotations } = entries[i]!;
    if (artifactType !== undefined && typeof artifactType !== 'string') {
      throw new RegistryError('INVALID_MANIFEST', `${what}: manifests[${i}].artifactType is not a string`);
    }
    if (annotations !== undefined && !isStringRecord(annotations)) {
      throw new RegistryError('INVALID_MANIFEST', `${what}: manifests[${i}].annotations is not an object of strings`);
    }
    return { digest, mediaType, size, ...(artifactType === undefined ? {} : { artifactType }), ...(annotations === undefined ? {} : { annotations }), via };
  });
}

/** Annotations' shape: an object whose values are all strings. */
export function isStringRecord(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}

/** The same error, its message prefixed with what was being listed. */
export function withContext(error: unknown, what: string): RegistryError {
  if (!(error instanceof RegistryError)) return networkError(error, what);
  return new RegistryError(error.code, `${what}: ${error.message}`, {
    ...(error.status === undefined ? {} : { status: error.status }),
    ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
    cause: error,
  });
}

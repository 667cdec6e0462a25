import type { ErrorInfo } from '../services/registry/errors.js';
import type { Descriptor } from '../services/registry/media-types.js';

/** A repository on a registry, as a job names it. Credentials are never part of a job. */
export interface Location {
  registry: string;
  repository: string;
}

/** One thing to copy: a source tag or digest, to a destination tag or digest. */
export interface WorkItem {
  source: string;
  target: string;
  /** The source tag given beside the digest (`app:1.0@sha256:…`): it must still point at that digest. */
  sourceTag?: string;
}

export interface ManifestRef {
  digest: string;
  mediaType: string;
}

/** Which referrers travel with the images: every one, none, or those of the given artifact types. */
export type ReferrerSelection = 'all' | 'none' | string[];

/** A public key whose cosign signature an image must carry to be copied. */
export interface SignatureRequirement {
  /** PEM (what `cosign generate-key-pair` writes as cosign.pub). */
  key: string;
  /** Where the key came from, for messages: a file, a policy. */
  source: string;
}

/**
 * A manifest that refers to one the plan pushes (a signature, an SBOM, an attestation), pushed
 * after what it refers to.
 */
export interface ReferrerRef extends ManifestRef {
  /** What it refers to; absent for the manifests of a referrer that is an index, pushed just before it. */
  subject?: string;
  artifactType?: string;
  /** cosign's tag it was found under (`sha256-<hex>.sig`), given to it on the destination too. */
  tag?: string;
}

/** An index of a subset of the source's platforms, rebuilt on demand from the source index. */
export interface DerivedIndex {
  from: string;
  platforms: string[];
}

/** What pushing one item takes: blobs first, then `manifests` in order (children, then root). */
export interface TagPlan {
  item: WorkItem;
  sourceDigest: string;
  /** The digest that lands at the target; differs from the source when platforms are filtered. */
  targetDigest: string;
  /** Empty when the image is already at the target and only referrers of it are missing. */
  manifests: ManifestRef[];
  derived?: DerivedIndex;
  /** In push order, each after its subject. */
  referrers: ReferrerRef[];
  /** Of the image's and its referrers' manifests. */
  blobs: Descriptor[];
  /** Digests of the blobs the destination lacks, and their bytes (for plans and dry runs). */
  missing: string[];
  missingBytes: number;
}

export interface TagOutcome {
  item: WorkItem;
  /** What the target holds now. */
  digest: string;
  /** What the source holds; differs from `digest` when platforms were filtered. */
  sourceDigest: string;
}

/** An item not copied because `--require-signature` found no signature that verifies. */
export interface RefusedTag extends TagOutcome {
  reason: string;
}

/** A referrer pushed with the image of `item`. */
export interface ReferrerOutcome {
  item: WorkItem;
  subject: string;
  digest: string;
  artifactType?: string;
}

/** An item that failed alone (its manifest or a blob missing, corrupt or refused): the job went on without it. */
export interface FailedTag {
  item: WorkItem;
  /** What the source holds, when it was learnt before the failure. */
  sourceDigest?: string;
  error: ErrorInfo;
}

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
}

export interface ManifestRef {
  digest: string;
  mediaType: string;
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
  manifests: ManifestRef[];
  derived?: DerivedIndex;
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

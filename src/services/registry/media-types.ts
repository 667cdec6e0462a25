import { RegistryError } from './errors.js';
import { isDigest } from './digest.js';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** All four, in every manifest GET and HEAD: distribution 2.8 hides OCI content without them. */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ');

const INDEX_TYPES = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);
const IMAGE_TYPES = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[] }
  | { kind: 'image'; mediaType: string; config: Descriptor; layers: Descriptor[] };

export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

/**
 * Validates manifest bytes and tells what they reference. `contentType` is the registry's
 * header; the document's own `mediaType` wins when present, because OCI makes the field
 * optional and some registries answer `application/json`.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, what: string): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw invalid(what, `is not JSON (${(error as Error).message})`);
  }
  if (!isObject(doc)) throw invalid(what, 'is not a JSON object');
  if (doc.schemaVersion !== 2) throw invalid(what, `has schemaVersion ${JSON.stringify(doc.schemaVersion)}, expected 2`);

  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  const header = contentType?.split(';')[0]?.trim();
  const mediaType = declared ?? (header && (INDEX_TYPES.has(header) || IMAGE_TYPES.has(header)) ? header : inferMediaType(doc));
  if (!mediaType) throw invalid(what, 'has no recognisable media type');

  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid(what, 'is an index without a "manifests" array');
    return { kind: 'index', mediaType, manifests: doc.manifests.map((d, i) => descriptor(d, what, `manifests[${i}]`)) };
  }
  if (IMAGE_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.layers)) throw invalid(what, 'is an image manifest without a "layers" array');
    return {
      kind: 'image',
      mediaType,
      config: descriptor(doc.config, what, 'config'),
      layers: doc.layers.map((d, i) => descriptor(d, what, `layers[${i}]`)),
    };
  }
  throw new RegistryError('UNSUPPORTED', `${what}: media type ${mediaType} is not supported (only OCI and Docker v2 manifests and indexes)`);
}

function inferMediaType(doc: Record<string, unknown>): string | undefined {
  if (Array.isArray(doc.manifests)) return OCI_INDEX;
  if (isObject(doc.config) && Array.isArray(doc.layers)) return OCI_MANIFEST;
  return undefined;
}

function descriptor(value: unknown, what: string, field: string): Descriptor {
  if (!isObject(value)) throw invalid(what, `${field} is not an object`);
  const { mediaType, digest, size, platform } = value;
  if (typeof mediaType !== 'string') throw invalid(what, `${field}.mediaType is missing`);
  if (typeof digest !== 'string' || !isDigest(digest)) throw invalid(what, `${field}.digest ${JSON.stringify(digest)} is not a digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(what, `${field}.size ${JSON.stringify(size)} is not a non-negative integer`);
  }
  const result: Descriptor = { mediaType, digest, size };
  const read = readPlatform(platform);
  if (read) result.platform = read;
  return result;
}

/** `os`, `architecture` and `variant` of a descriptor's platform, or of an image config (which has them at its top). */
export function readPlatform(value: unknown): Platform | undefined {
  if (!isObject(value) || typeof value.os !== 'string' || typeof value.architecture !== 'string') return undefined;
  return { os: value.os, architecture: value.architecture, ...(typeof value.variant === 'string' ? { variant: value.variant } : {}) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(what: string, problem: string): RegistryError {
  return new RegistryError('INVALID_MANIFEST', `${what}: manifest ${problem}`);
}

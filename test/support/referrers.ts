/**
 * What cosign and oras push on a registry without the referrers API (distribution 2.8), with raw
 * HTTP and node's crypto only, so that tests check ferry against code that is not ferry's.
 */
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { OCI_MEDIA_TYPES } from './images.js';

export const EMPTY_DESCRIPTOR = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
} as const;
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const ACCEPT = [OCI_MEDIA_TYPES.index, OCI_MEDIA_TYPES.manifest, 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

interface RawManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export const sha256 = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** `sha256:1a2b...` → `sha256-1a2b...`, the fallback index's tag; cosign adds `.sig`, `.att`, `.sbom`. */
export const digestTag = (digest: string): string => digest.replace(':', '-');

/** An ECDSA P-256 key pair, as `cosign generate-key-pair` makes. */
export function generateSigningKeys(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

async function ok(response: Response, expected: number, what: string): Promise<Response> {
  if (response.status !== expected) throw new Error(`${what}: ${response.status} ${await response.text()}`);
  return response;
}

/** A monolithic blob upload: POST, then PUT with the digest. */
export async function pushBlob(host: string, repository: string, bytes: Buffer, mediaType: string): Promise<Descriptor> {
  const digest = sha256(bytes);
  const start = await ok(await fetch(`http://${host}/v2/${repository}/blobs/uploads/`, { method: 'POST' }), 202, `POST upload to ${repository}`);
  const location = new URL(start.headers.get('location') ?? '', `http://${host}`);
  location.searchParams.set('digest', digest);
  await ok(await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes }), 201, `PUT blob ${digest}`);
  return { mediaType, digest, size: bytes.length };
}

export async function pushJsonBlob(host: string, repository: string, value: unknown, mediaType: string): Promise<Descriptor> {
  return pushBlob(host, repository, Buffer.from(JSON.stringify(value)), mediaType);
}

/** PUTs the manifest's JSON by `reference` (a tag, or its digest when absent). */
export async function pushManifest(host: string, repository: string, manifest: object, reference?: string): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(manifest));
  const mediaType = (manifest as { mediaType?: string }).mediaType ?? OCI_MEDIA_TYPES.manifest;
  const digest = sha256(bytes);
  const url = `http://${host}/v2/${repository}/manifests/${reference ?? digest}`;
  await ok(await fetch(url, { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes }), 201, `PUT manifest ${repository}:${reference ?? digest}`);
  return { mediaType, digest, size: bytes.length };
}

export async function fetchManifest(host: string, repository: string, reference: string): Promise<RawManifest | undefined> {
  const response = await fetch(`http://${host}/v2/${repository}/manifests/${reference}`, { headers: { accept: ACCEPT } });
  if (response.status === 404) return undefined;
  await ok(response, 200, `GET manifest ${repository}:${reference}`);
  const bytes = Buffer.from(await response.arrayBuffer());
  return { bytes, mediaType: response.headers.get('content-type') ?? '', digest: sha256(bytes) };
}

async function fetchBlob(host: string, repository: string, digest: string): Promise<Buffer> {
  const response = await ok(await fetch(`http://${host}/v2/${repository}/blobs/${digest}`), 200, `GET blob ${digest}`);
  return Buffer.from(await response.arrayBuffer());
}

async function subjectDescriptor(host: string, repository: string, subjectDigest: string): Promise<Descriptor> {
  const subject = await fetchManifest(host, repository, subjectDigest);
  if (!subject) throw new Error(`subject ${repository}@${subjectDigest} is not on ${host}`);
  return { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length };
}

/** cosign's simple-signing payload claiming `subjectDigest`. */
export function simpleSigningPayload(host: string, repository: string, subjectDigest: string): Buffer {
  return Buffer.from(JSON.stringify({
    critical: {
      identity: { 'docker-reference': `${host}/${repository}` },
      image: { 'docker-manifest-digest': subjectDigest },
      type: 'cosign container image signature',
    },
    optional: null,
  }));
}

/** Base64 ECDSA-SHA256 (DER) signature of the payload bytes, as in cosign's annotation. */
export const signPayload = (payload: Buffer, privateKey: KeyObject): string => sign('sha256', payload, privateKey).toString('base64');

/**
 * Adds a signature layer (`payload`, annotated with `signature`) to the image manifest tagged
 * `sha256-<hex>.sig`, keeping the layers already there as `cosign sign` does.
 */
export async function pushSignature(host: string, repository: string, subjectDigest: string, payload: Buffer, signature: string): Promise<Descriptor & { tag: string }> {
  const tag = `${digestTag(subjectDigest)}.sig`;
  const existing = await fetchManifest(host, repository, tag);
  const layers: Descriptor[] = existing ? (JSON.parse(existing.bytes.toString()) as { layers: Descriptor[] }).layers : [];
  const layer = await pushBlob(host, repository, payload, SIMPLE_SIGNING_MEDIA_TYPE);
  layers.push({ ...layer, annotations: { [SIGNATURE_ANNOTATION]: signature } });
  const config = await pushJsonBlob(host, repository, {
    architecture: '', os: '', config: {}, created: '0001-01-01T00:00:00Z',
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  }, OCI_MEDIA_TYPES.config);
  const manifest = await pushManifest(host, repository, { schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.manifest, config, layers }, tag);
  return { ...manifest, tag };
}

/** What `cosign sign --key` pushes on a registry without the referrers API. */
export async function signImage(host: string, repository: string, subjectDigest: string, privateKey: KeyObject): Promise<Descriptor & { tag: string }> {
  const payload = simpleSigningPayload(host, repository, subjectDigest);
  return pushSignature(host, repository, subjectDigest, payload, signPayload(payload, privateKey));
}

export type Verification = { verified: true } | { verified: false; reason: string };

/** What `cosign verify --key` checks: some layer of `sha256-<hex>.sig` claims the digest and its signature verifies. */
export async function verifySignature(host: string, repository: string, subjectDigest: string, publicKey: KeyObject): Promise<Verification> {
  const tag = `${digestTag(subjectDigest)}.sig`;
  const signatures = await fetchManifest(host, repository, tag);
  if (!signatures) return { verified: false, reason: `no signature tag ${tag}` };
  const { layers } = JSON.parse(signatures.bytes.toString()) as { layers: Descriptor[] };
  const reasons: string[] = [];
  for (const layer of layers) {
    const payload = await fetchBlob(host, repository, layer.digest);
    if (sha256(payload) !== layer.digest) {
      reasons.push(`payload ${layer.digest} has other content`);
      continue;
    }
    const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
    if (!signature) {
      reasons.push(`layer ${layer.digest} has no signature`);
      continue;
    }
    if (!verify('sha256', payload, publicKey, Buffer.from(signature, 'base64'))) {
      reasons.push(`signature of ${layer.digest} does not verify`);
      continue;
    }
    const claimed = (JSON.parse(payload.toString()) as { critical?: { image?: { 'docker-manifest-digest'?: string } } }).critical?.image?.['docker-manifest-digest'];
    if (claimed !== subjectDigest) {
      reasons.push(`payload ${layer.digest} claims ${claimed}`);
      continue;
    }
    return { verified: true };
  }
  return { verified: false, reason: reasons.join('; ') || 'no signature layers' };
}

/** cosign's `.att` or `.sbom` tag: an image manifest of one layer, as `cosign attach` makes without referrers. */
export async function attachCosignTag(
  host: string,
  repository: string,
  subjectDigest: string,
  suffix: 'att' | 'sbom',
  content: Buffer,
  mediaType: string,
): Promise<Descriptor & { tag: string }> {
  const tag = `${digestTag(subjectDigest)}.${suffix}`;
  const layer = await pushBlob(host, repository, content, mediaType);
  const config = await pushJsonBlob(host, repository, { architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } }, OCI_MEDIA_TYPES.config);
  const manifest = await pushManifest(host, repository, { schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.manifest, config, layers: [layer] }, tag);
  return { ...manifest, tag };
}

export interface Attachment {
  artifactType: string;
  content: Buffer;
  /** The layer's media type. */
  mediaType: string;
  annotations?: Record<string, string>;
}

/**
 * What `oras attach` pushes on a registry without the referrers API: an OCI 1.1 artifact
 * manifest with `subject`, by digest, then the fallback index `sha256-<hex>` read, extended and
 * written back with every referrer it listed kept.
 */
export async function attachReferrer(host: string, repository: string, subjectDigest: string, attachment: Attachment): Promise<Descriptor> {
  const subject = await subjectDescriptor(host, repository, subjectDigest);
  const [, layer] = await Promise.all([
    pushBlob(host, repository, Buffer.from('{}'), EMPTY_DESCRIPTOR.mediaType),
    pushBlob(host, repository, attachment.content, attachment.mediaType),
  ]);
  const annotations = attachment.annotations;
  const manifest = await pushManifest(host, repository, {
    schemaVersion: 2,
    mediaType: OCI_MEDIA_TYPES.manifest,
    artifactType: attachment.artifactType,
    config: EMPTY_DESCRIPTOR,
    layers: [layer],
    subject,
    ...(annotations ? { annotations } : {}),
  });
  const referrer: Descriptor = { ...manifest, artifactType: attachment.artifactType, ...(annotations ? { annotations } : {}) };
  const listed = await fallbackIndex(host, repository, subjectDigest);
  if (!listed.some((d) => d.digest === referrer.digest)) {
    await pushManifest(host, repository, { schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.index, manifests: [...listed, referrer] }, digestTag(subjectDigest));
  }
  return referrer;
}

/** The descriptors the fallback index `sha256-<hex>` lists; none when it is absent. */
export async function fallbackIndex(host: string, repository: string, subjectDigest: string): Promise<Descriptor[]> {
  const index = await fetchManifest(host, repository, digestTag(subjectDigest));
  return index ? (JSON.parse(index.bytes.toString()) as { manifests: Descriptor[] }).manifests : [];
}

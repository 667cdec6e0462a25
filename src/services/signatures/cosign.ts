import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { getBlob } from '../registry/blob.js';
import { RegistryError } from '../registry/errors.js';
import { getManifest, headManifest } from '../registry/manifest.js';
import { fallbackTag } from '../registry/referrers.js';
import type { Repository } from '../registry/repository.js';
import { digestOf } from '../registry/digest.js';

/**
 * cosign's signatures on a registry without the referrers API (what `cosign sign --key` pushes):
 * an image manifest tagged `sha256-<hex>.sig` whose layers are simple-signing payloads, each
 * with the base64 ECDSA signature of its bytes in an annotation. A signature counts when it
 * verifies with the key and its payload names the signed manifest's digest.
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 */

const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** Simple-signing payloads are a few hundred bytes: anything much larger is no payload. */
const MAX_PAYLOAD_BYTES = 64 * 1024;

export type SignatureCheck = { verified: true; payload: string } | { verified: false; reason: string };

/** An ECDSA P-256 public key in PEM (what `cosign generate-key-pair` writes as cosign.pub). */
export function signingKey(pem: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new RegistryError('INVALID_CONFIG', `${source} is not a PEM public key: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new RegistryError('INVALID_CONFIG', `${source} is not an ECDSA P-256 public key (cosign's keys are)`);
  }
  return key;
}

interface Layer {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
  annotations?: Record<string, unknown>;
}

/** Whether `subjectDigest` in `repo` carries a cosign signature that verifies with `key`; the reason when not. */
export async function verifyCosignSignature(repo: Repository, subjectDigest: string, key: KeyObject, signal?: AbortSignal): Promise<SignatureCheck> {
  const tag = `${fallbackTag(subjectDigest)}.sig`;
  const subject = repo.ref(subjectDigest);
  if (!(await headManifest(repo, tag, signal))) return { verified: false, reason: `${subject} is not signed (no ${tag})` };
  const signatures = await getManifest(repo, tag, signal);
  const layers = (JSON.parse(signatures.bytes.toString()) as { layers?: Layer[] }).layers ?? [];
  const reasons: string[] = [];
  for (const layer of layers) {
    if (layer.mediaType !== SIMPLE_SIGNING || typeof layer.digest !== 'string') continue;
    const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
    if (typeof signature !== 'string') {
      reasons.push(`payload ${layer.digest} carries no signature`);
      continue;
    }
    if (typeof layer.size !== 'number' || layer.size > MAX_PAYLOAD_BYTES) {
      reasons.push(`payload ${layer.digest} is ${String(layer.size)} bytes, not a simple-signing payload`);
      continue;
    }
    const payload = await buffer((await getBlob(repo, layer.digest, signal ? { signal } : {})).body);
    if (digestOf(payload) !== layer.digest) {
      reasons.push(`payload ${layer.digest} does not match its digest`);
      continue;
    }
    if (!verify('sha256', payload, key, Buffer.from(signature, 'base64'))) {
      reasons.push(`the signature of payload ${layer.digest} does not verify with the key`);
      continue;
    }
    const claimed = signedDigest(payload);
    if (claimed !== subjectDigest) {
      reasons.push(`payload ${layer.digest} signs ${claimed ?? 'no digest'}, not ${subjectDigest}`);
      continue;
    }
    return { verified: true, payload: layer.digest };
  }
  return { verified: false, reason: `${subject}: ${reasons.join('; ') || `${tag} holds no simple-signing payload`}` };
}

function signedDigest(payload: Buffer): string | undefined {
  try {
    const claimed = (JSON.parse(payload.toString()) as { critical?: { image?: { 'docker-manifest-digest'?: unknown } } }).critical?.image?.['docker-manifest-digest'];
    return typeof claimed === 'string' ? claimed : undefined;
  } catch {
    return undefined;
  }
}

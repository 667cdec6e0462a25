import { createHash } from 'node:crypto';
import { RegistryError } from './errors.js';

export interface ParsedDigest {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

type Algorithm = ParsedDigest['algorithm'];

const HEX_LENGTH: Record<Algorithm, number> = { sha256: 64, sha512: 128 };
const LOWERCASE_HEX = /^[0-9a-f]*$/;

function isAlgorithm(value: string): value is Algorithm {
  return Object.hasOwn(HEX_LENGTH, value);
}

function isEncoded(algorithm: Algorithm, hex: string): boolean {
  return hex.length === HEX_LENGTH[algorithm] && LOWERCASE_HEX.test(hex);
}

export function parseDigest(digest: string): ParsedDigest {
  const fail = (reason: string): never => {
    throw new RegistryError('INVALID_REFERENCE', `invalid digest ${JSON.stringify(digest)}: ${reason}`);
  };
  const colon = digest.indexOf(':');
  if (colon === -1) return fail('expected "<algorithm>:<hex>"');
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (!isAlgorithm(algorithm)) {
    return fail(`unsupported algorithm ${JSON.stringify(algorithm)}, expected sha256 or sha512`);
  }
  if (!isEncoded(algorithm, hex)) {
    return fail(`expected ${HEX_LENGTH[algorithm]} lowercase hex characters after "${algorithm}:"`);
  }
  return { algorithm, hex };
}

export function isDigest(value: string): boolean {
  const colon = value.indexOf(':');
  const algorithm = value.slice(0, colon);
  return colon !== -1 && isAlgorithm(algorithm) && isEncoded(algorithm, value.slice(colon + 1));
}

export function digestOf(bytes: Uint8Array, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

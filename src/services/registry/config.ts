import { getBlob } from './blob.js';
import { networkError } from './client.js';
import { digestOf, parseDigest } from './digest.js';
import { RegistryError } from './errors.js';
import { readPlatform, type Descriptor, type Platform } from './media-types.js';
import type { Repository } from './repository.js';

/** Image configs are a few KiB; a larger "config" is some artifact's, and holds nothing ferry reads. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** An image's config, read whole and verified against its descriptor (size, then digest). */
export async function getConfig(repository: Repository, config: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  const what = `GET config ${repository.ref()}@${config.digest}`;
  if (config.size > MAX_CONFIG_BYTES) throw new RegistryError('UNSUPPORTED', `${what}: ${config.size} bytes, more than the ${MAX_CONFIG_BYTES} ferry reads of a config`);
  const { body } = await getBlob(repository, config.digest, signal ? { signal } : {});
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > config.size) throw new RegistryError('SIZE_MISMATCH', `${what}: more than the ${config.size} bytes its manifest says`);
      chunks.push(chunk);
    }
  } catch (error) {
    throw networkError(error, what, signal);
  }
  const bytes = Buffer.concat(chunks, size);
  const digest = digestOf(bytes, parseDigest(config.digest).algorithm);
  if (digest !== config.digest) throw new RegistryError('DIGEST_MISMATCH', `${what}: content has digest ${digest}`);
  return bytes;
}

/** What an image config says of itself: its platform and creation time, when it says them. */
export function describeConfig(config: Buffer): { platform?: Platform; created?: number } {
  let document: unknown;
  try {
    document = JSON.parse(config.toString('utf8'));
  } catch {
    return {};
  }
  if (typeof document !== 'object' || document === null) return {};
  const { created } = document as { created?: unknown };
  const time = typeof created === 'string' ? Date.parse(created) : Number.NaN;
  const platform = readPlatform(document);
  return { ...(platform && { platform }), ...(!Number.isNaN(time) && { created: time }) };
}

import { digestOf } from './registry/digest.js';
import { RegistryError } from './registry/errors.js';
import type { Descriptor, Platform } from './registry/media-types.js';
import type { Manifest } from './registry/manifest.js';
import { parseManifest } from './registry/media-types.js';

/** `os/arch[/variant]`; without a variant any variant matches. */
export function matchesPlatform(platform: Platform | undefined, wanted: string): boolean {
  if (!platform) return false;
  const [os, architecture, variant] = wanted.split('/');
  return platform.os === os && platform.architecture === architecture && (variant === undefined || platform.variant === variant);
}

export function formatPlatform(platform: Platform | undefined): string {
  if (!platform) return 'unknown';
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

export function selectPlatforms(children: readonly Descriptor[], wanted: readonly string[], what: string): Descriptor[] {
  const selected = children.filter((child) => wanted.some((w) => matchesPlatform(child.platform, w)));
  if (selected.length === 0) {
    throw new RegistryError(
      'NOT_FOUND',
      `${what}: no platform matches ${wanted.join(', ')} (the index has ${children.map((c) => formatPlatform(c.platform)).join(', ')})`,
    );
  }
  return selected;
}

/**
 * A new index holding only the selected children. It keeps every other field of the source
 * index, so the same source and platforms always give the same bytes and digest.
 */
export function deriveIndex(index: Manifest, children: readonly Descriptor[], what: string): Manifest {
  const selected = new Set(children.map((d) => d.digest));
  const document = JSON.parse(index.bytes.toString('utf8')) as { manifests: Array<{ digest: string }> };
  document.manifests = document.manifests.filter((m) => selected.has(m.digest));
  const bytes = Buffer.from(JSON.stringify(document));
  return { digest: digestOf(bytes), mediaType: index.mediaType, bytes, parsed: parseManifest(bytes, index.mediaType, what) };
}

import { formatPlatform } from '../services/platforms.js';
import { describeConfig, getConfig, MAX_CONFIG_BYTES } from '../services/registry/config.js';
import { getManifest, type Manifest } from '../services/registry/manifest.js';
import { listReferrers } from '../services/registry/referrers.js';
import type { Repository } from '../services/registry/repository.js';
import { formatBytes } from './format.js';
import type { CommandIO } from './io.js';
import { withRepository, type ReadOptions } from './registry-access.js';
import { table } from './table.js';
import { UsageError } from './usage.js';

interface Inspection {
  reference: string;
  digest: string;
  mediaType: string;
  /** The manifests, configs and layers of every platform, as a pull of all of them moves. */
  size: number;
  /** An image's, from its config; null for an index, whose platforms are listed. */
  platform: string | null;
  platforms: Array<{ platform: string; digest: string; size: number }>;
  referrers: Array<{ digest: string; artifactType: string | null; mediaType: string; tag: string | null }>;
}

/** `ferry inspect REF`: what a tag or digest holds, read from the registry. */
export async function inspectCommand(input: string, options: ReadOptions & { json?: boolean }, io: CommandIO): Promise<number> {
  const inspection = await withRepository(input, options, io, async (repo, reference) => {
    const target = reference.digest ?? reference.tag;
    if (!target) throw new UsageError(`inspect takes a tag or digest: ${input}:TAG or ${input}@sha256:...`);
    return inspect(repo, target);
  });
  io.stdout.write(options.json ? `${JSON.stringify(inspection, null, 2)}\n` : describe(inspection));
  return 0;
}

async function inspect(repo: Repository, target: string): Promise<Inspection> {
  const manifest = await getManifest(repo, target);
  const { parsed } = manifest;
  const platforms =
    parsed.kind === 'index'
      ? await Promise.all(parsed.manifests.map(async (child) => ({ platform: formatPlatform(child.platform), digest: child.digest, size: imageSize(await getManifest(repo, child.digest)) })))
      : [];
  // An image's platform is in its config, as skopeo inspect reads it; an artifact's "config" is often something else.
  const platform = parsed.kind === 'image' ? (parsed.config.size <= MAX_CONFIG_BYTES ? formatPlatform(describeConfig(await getConfig(repo, parsed.config)).platform) : 'unknown') : null;
  const size = parsed.kind === 'index' ? manifest.bytes.length + platforms.reduce((sum, p) => sum + p.size, 0) : imageSize(manifest);
  const referrers = await listReferrers(repo, manifest.digest);
  return {
    reference: repo.ref(target),
    digest: manifest.digest,
    mediaType: manifest.mediaType,
    size,
    platform,
    platforms,
    referrers: referrers.map((r) => ({ digest: r.digest, artifactType: r.artifactType ?? null, mediaType: r.mediaType, tag: r.tag ?? null })),
  };
}

function imageSize(manifest: Manifest): number {
  const { parsed } = manifest;
  if (parsed.kind === 'index') return manifest.bytes.length;
  return manifest.bytes.length + parsed.config.size + parsed.layers.reduce((sum, layer) => sum + layer.size, 0);
}

function describe(i: Inspection): string {
  const lines = [`reference:  ${i.reference}`, `digest:     ${i.digest}`, `media type: ${i.mediaType}`, ...(i.platform === null ? [] : [`platform:   ${i.platform}`]), `size:       ${formatBytes(i.size)}`];
  let text = `${lines.join('\n')}\n`;
  if (i.platforms.length > 0) text += `\nplatforms:\n${table(['PLATFORM', 'DIGEST', 'SIZE'], i.platforms.map((p) => [p.platform, p.digest, formatBytes(p.size)]))}`;
  text += i.referrers.length > 0
    ? `\nreferrers:\n${table(['DIGEST', 'ARTIFACT TYPE', 'TAG'], i.referrers.map((r) => [r.digest, r.artifactType ?? 'untyped', r.tag ?? '']))}`
    : '\nreferrers: none\n';
  return text;
}

import type { Location } from '../actors/types.js';
import { loadManifest, openRepository, type JobRuntime } from './job-runtime.js';
import { mapLimit } from './map-limit.js';
import { describeConfig, getConfig, MAX_CONFIG_BYTES } from './registry/config.js';
import { isRegistryError } from './registry/errors.js';
import { getManifest, type Manifest } from './registry/manifest.js';
import type { Descriptor } from './registry/media-types.js';
import type { Repository } from './registry/repository.js';

/** Tags looked up at once: each costs two or three small GETs. */
const CONCURRENCY = 8;

/**
 * When the images the tags point at were created, from their configs' `created` (what
 * `docker build` and BuildKit write); undefined for a config without one. An index counts as
 * created when its first platform image was (BuildKit's attestation manifests, platform
 * `unknown/unknown`, are skipped): a multi-platform build makes its platforms together, and
 * one image costs two GETs where every platform would cost two each.
 *
 * The manifests fetched are kept with the job's, so planning the tags later fetches them no more.
 */
export async function creationTimes(runtime: JobRuntime, location: Location, tags: string[], signal?: AbortSignal): Promise<Array<number | undefined>> {
  const repository = await openRepository(runtime, location, 'pull', signal);
  const configs = new Map<string, Promise<number | undefined>>();
  return mapLimit(tags, CONCURRENCY, async (tag) => {
    try {
      const image = await imageOf(runtime, repository, tag, signal);
      if (image?.parsed.kind !== 'image') return undefined;
      const { config } = image.parsed;
      let created = configs.get(config.digest);
      if (!created) configs.set(config.digest, (created = configCreated(repository, config, signal)));
      return await created;
    } catch (error) {
      // A tag deleted since the listing, or an image missing a part, ranks as the oldest: if
      // it is kept all the same, copying it says what is missing, for that tag alone.
      if (isRegistryError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  });
}

/** The image a tag points at, or its index's first platform image. */
async function imageOf(runtime: JobRuntime, repository: Repository, tag: string, signal?: AbortSignal): Promise<Manifest | undefined> {
  const manifest = await getManifest(repository, tag, signal);
  runtime.manifests.set(manifest.digest, manifest);
  runtime.resolved.set(tag, manifest.digest);
  if (manifest.parsed.kind === 'image') return manifest;
  const first = manifest.parsed.manifests.find((child) => child.platform?.os !== 'unknown');
  return first && loadManifest(runtime, repository, first.digest, signal);
}

async function configCreated(repository: Repository, config: Descriptor, signal?: AbortSignal): Promise<number | undefined> {
  if (config.size > MAX_CONFIG_BYTES) return undefined;
  return describeConfig(await getConfig(repository, config, signal)).created;
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FERRY_CLI, run } from './process.js';
import type { SeededRepository } from './fixtures.js';
import { listTags, rawManifest } from '../test/support/skopeo.js';

export function ferryCopy(sourceHost: string, repository: string, destinationHost: string, destinationRepository: string): Promise<string> {
  return run(process.execPath, [FERRY_CLI, 'copy', `${sourceHost}/${repository}`, `${destinationHost}/${destinationRepository}`]);
}

const ROOT_BLOB_INFO_CACHE = '/var/lib/containers/cache';

/**
 * skopeo remembers in its blob-info cache where it saw each blob and mounts it from there
 * next time: every round would find the previous round's blobs on the destination registry and
 * upload almost nothing. So each sync starts with an empty cache, as a first sync does. As root
 * the cache directory is fixed: it gets a private tmpfs in a mount namespace of its own.
 */
async function skopeoWithEmptyCache(args: string[]): Promise<void> {
  if (process.geteuid?.() === 0) {
    await run('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tmpfs tmpfs "$0" && exec skopeo "$@"', ROOT_BLOB_INFO_CACHE, ...args]);
    return;
  }
  const dataHome = await mkdtemp(join(tmpdir(), 'ferry-bench-skopeo-'));
  try {
    await run('skopeo', args, { XDG_DATA_HOME: dataHome });
  } finally {
    await rm(dataHome, { recursive: true, force: true });
  }
}

/** skopeo sync puts the repository's last path component under `namespace`; returns where it went. */
export async function skopeoSync(sourceHost: string, repository: string, destinationHost: string, namespace: string): Promise<string> {
  await skopeoWithEmptyCache([
    'sync', '--all', '--preserve-digests', '--src', 'docker', '--dest', 'docker',
    '--src-tls-verify=false', '--dest-tls-verify=false', `${sourceHost}/${repository}`, `${destinationHost}/${namespace}`,
  ]);
  return skopeoDestination(repository, namespace);
}

export function skopeoDestination(repository: string, namespace: string): string {
  return `${namespace}/${repository.split('/').at(-1)}`;
}

/** Every tag is there, and the first points at the source's manifest (a copy that dropped platforms keeps its tags). */
export async function verifyCopy(host: string, repository: string, seeded: SeededRepository): Promise<void> {
  const copied = new Set(await listTags({ host, repository }));
  const missing = Object.keys(seeded.tags).filter((tag) => !copied.has(tag));
  if (missing.length > 0) throw new Error(`${host}/${repository}: ${missing.length} tags missing (${missing.slice(0, 5).join(', ')}...)`);
  const [sample] = Object.values(seeded.tags);
  if (!sample) return;
  const { digest } = await rawManifest({ host, repository, tag: sample.tag });
  if (digest !== sample.digest) throw new Error(`${host}/${repository}:${sample.tag} is ${digest}, expected ${sample.digest}`);
}

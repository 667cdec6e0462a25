import { createHash } from 'node:crypto';
import type { BuiltTag } from '../support/images.js';
import { OCI_MEDIA_TYPES } from '../support/images.js';

/** Plain HTTP against a test registry (no proxy): seeding a destination and checking what it holds. */

const ACCEPT = [OCI_MEDIA_TYPES.manifest, OCI_MEDIA_TYPES.index].join(', ');

async function ok(response: Response, what: string): Promise<Response> {
  if (!response.ok) throw new Error(`${what}: ${response.status} ${await response.text()}`);
  return response;
}

export async function tagsOf(host: string, repository: string): Promise<string[]> {
  const response = await fetch(`http://${host}/v2/${repository}/tags/list`);
  if (response.status === 404) return [];
  return ((await (await ok(response, `tags of ${repository}`)).json()) as { tags: string[] | null }).tags ?? [];
}

async function manifest(host: string, repository: string, reference: string) {
  const response = await fetch(`http://${host}/v2/${repository}/manifests/${reference}`, { headers: { accept: ACCEPT } });
  const bytes = Buffer.from(await (await ok(response, `manifest ${repository}:${reference}`)).arrayBuffer());
  return { bytes, mediaType: response.headers.get('content-type') ?? OCI_MEDIA_TYPES.manifest, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

async function pushBlob(host: string, repository: string, digest: string, bytes: Buffer): Promise<void> {
  const started = await ok(await fetch(`http://${host}/v2/${repository}/blobs/uploads/`, { method: 'POST' }), 'start upload');
  const location = new URL(started.headers.get('location')!, `http://${host}`);
  location.searchParams.set('digest', digest);
  await ok(await fetch(location, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } }), `upload ${digest}`);
}

/** Copies a tag's blobs (and, with `tag`, its manifest at that tag) between two registries. */
export async function seedImage(from: { host: string; repository: string }, to: { host: string; repository: string }, built: BuiltTag, options: { tag: boolean }): Promise<void> {
  for (const digest of built.blobs) {
    const response = await ok(await fetch(`http://${from.host}/v2/${from.repository}/blobs/${digest}`), `blob ${digest}`);
    await pushBlob(to.host, to.repository, digest, Buffer.from(await response.arrayBuffer()));
  }
  if (!options.tag) return;
  const source = await manifest(from.host, from.repository, built.tag);
  await ok(await fetch(`http://${to.host}/v2/${to.repository}/manifests/${built.tag}`, { method: 'PUT', body: source.bytes, headers: { 'content-type': source.mediaType } }), `push ${built.tag}`);
}

/**
 * The destination invariant: every tag it holds has the source's manifest digest, and every
 * blob that manifest references is there. Returns the tags, to compare with what should be.
 */
export async function intactTags(host: string, repository: string, built: Record<string, BuiltTag>): Promise<string[]> {
  const tags = (await tagsOf(host, repository)).sort();
  for (const tag of tags) {
    const held = await manifest(host, repository, tag);
    if (held.digest !== built[tag]?.digest) throw new Error(`${repository}:${tag} is ${held.digest}, the source has ${built[tag]?.digest}`);
    const parsed = JSON.parse(held.bytes.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
    for (const { digest } of [parsed.config, ...parsed.layers]) {
      const head = await fetch(`http://${host}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
      if (head.status !== 200) throw new Error(`${repository}:${tag} references ${digest}, which the destination lacks (${head.status})`);
    }
  }
  return tags;
}

import { createCipheriv, createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export const OCI_MEDIA_TYPES = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** `size` bytes of deterministic pseudo-random data derived from `seed`. */
export interface LayerSpec {
  size: number;
  seed: string;
}

export interface ImageSpec {
  layers: LayerSpec[];
  platform?: Platform;
  /** The config's `created` (RFC 3339), which it has only when given. */
  created?: string;
}

export type TagSpec = ImageSpec | { platforms: ImageSpec[] };

export interface BuiltTag {
  tag: string;
  digest: string;
  mediaType: string;
  /** Every blob the tag references (layers and configs), each once. */
  blobs: string[];
  /** The config digest of each image: the tag's own, or its index's platforms' in order. */
  configs: string[];
  /** Child manifest digests of an index; empty for a single image. */
  manifests: string[];
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface BuiltImage {
  manifest: Descriptor;
  platform: Platform;
  blobs: string[];
  config: string;
}

const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };
const CHUNK_BYTES = 1024 * 1024;

/** AES-256-CTR keystream keyed by sha256(seed): fast, deterministic and incompressible. */
function* layerChunks(layer: LayerSpec): Generator<Buffer> {
  const key = createHash('sha256').update(layer.seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(Math.min(layer.size, CHUNK_BYTES));
  for (let left = layer.size; left > 0; left -= CHUNK_BYTES) {
    yield cipher.update(zeros.subarray(0, Math.min(left, CHUNK_BYTES)));
  }
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

class LayoutWriter {
  private readonly blobsDir: string;
  private readonly layers = new Map<string, Promise<Descriptor>>();
  private readonly jsonBlobs = new Set<string>();

  constructor(private readonly dir: string) {
    this.blobsDir = join(dir, 'blobs', 'sha256');
  }

  async init(): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true });
  }

  async tag(tag: string, spec: TagSpec): Promise<{ built: BuiltTag; descriptor: Descriptor }> {
    if (!('platforms' in spec)) {
      const { manifest, blobs, config } = await this.image(spec);
      return {
        built: { tag, digest: manifest.digest, mediaType: manifest.mediaType, blobs, configs: [config], manifests: [] },
        descriptor: manifest,
      };
    }
    const images = await Promise.all(spec.platforms.map((image) => this.image(image)));
    const descriptor = await this.json(OCI_MEDIA_TYPES.index, {
      schemaVersion: 2,
      mediaType: OCI_MEDIA_TYPES.index,
      manifests: images.map((image) => ({ ...image.manifest, platform: image.platform })),
    });
    const built = {
      tag,
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      blobs: [...new Set(images.flatMap((image) => image.blobs))],
      configs: images.map((image) => image.config),
      manifests: images.map((image) => image.manifest.digest),
    };
    return { built, descriptor };
  }

  async writeIndex(entries: Descriptor[]): Promise<void> {
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(this.dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MEDIA_TYPES.index, manifests: entries }),
    );
  }

  private async image(spec: ImageSpec): Promise<BuiltImage> {
    const platform = spec.platform ?? DEFAULT_PLATFORM;
    const layers = await Promise.all(spec.layers.map((layer) => this.layer(layer)));
    const config = await this.json(OCI_MEDIA_TYPES.config, {
      ...(spec.created ? { created: spec.created } : {}),
      ...platform,
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
      config: {},
    });
    const manifest = await this.json(OCI_MEDIA_TYPES.manifest, {
      schemaVersion: 2,
      mediaType: OCI_MEDIA_TYPES.manifest,
      config,
      layers,
    });
    const blobs = [...new Set([config.digest, ...layers.map((layer) => layer.digest)])];
    return { manifest, platform, blobs, config: config.digest };
  }

  private layer(spec: LayerSpec): Promise<Descriptor> {
    const key = `${spec.size}:${spec.seed}`;
    let descriptor = this.layers.get(key);
    if (!descriptor) {
      descriptor = this.writeLayer(spec);
      this.layers.set(key, descriptor);
    }
    return descriptor;
  }

  private async writeLayer(spec: LayerSpec): Promise<Descriptor> {
    const temp = join(this.blobsDir, `.tmp-${randomUUID()}`);
    const hash = createHash('sha256');
    await pipeline(function* () {
      for (const chunk of layerChunks(spec)) {
        hash.update(chunk);
        yield chunk;
      }
    }, createWriteStream(temp));
    const hex = hash.digest('hex');
    await rename(temp, join(this.blobsDir, hex));
    return { mediaType: OCI_MEDIA_TYPES.layer, digest: `sha256:${hex}`, size: spec.size };
  }

  private async json(mediaType: string, value: object): Promise<Descriptor> {
    const bytes = Buffer.from(JSON.stringify(value));
    const digest = sha256(bytes);
    if (!this.jsonBlobs.has(digest)) {
      this.jsonBlobs.add(digest);
      await writeFile(join(this.blobsDir, digest.slice('sha256:'.length)), bytes);
    }
    return { mediaType, digest, size: bytes.length };
  }
}

export async function writeOciLayout(dir: string, tags: Record<string, TagSpec>): Promise<Record<string, BuiltTag>> {
  const writer = new LayoutWriter(dir);
  await writer.init();
  const results = await Promise.all(Object.entries(tags).map(([tag, spec]) => writer.tag(tag, spec)));
  await writer.writeIndex(
    results.map(({ built, descriptor }) => ({
      ...descriptor,
      annotations: { 'org.opencontainers.image.ref.name': built.tag },
    })),
  );
  return Object.fromEntries(results.map(({ built }) => [built.tag, built]));
}

import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeOciLayout } from '../test/support/images.js';
import type { BuiltTag, Platform, TagSpec } from '../test/support/images.js';
import { seedLayout } from '../test/support/skopeo.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export type Fixture = 'bulk' | 'small' | 'far-small' | 'multiarch' | 'far-multiarch' | 'big' | 'budget';

export interface SeededRepository {
  repository: string;
  tags: Record<string, BuiltTag>;
  /** Its blobs and manifests, each once: the bytes a first copy moves. */
  bytes: number;
}

function tags(count: number, spec: (i: number) => TagSpec): Record<string, TagSpec> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`v${i}`, spec(i)]));
}

const PLATFORMS: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
  { os: 'linux', architecture: 's390x' },
];

/** An index of 4 platforms per tag: a 1 MiB base per platform shared by the tags, plus 256 KiB of its own. */
function multiarch(count: number, seed: string): Record<string, TagSpec> {
  return tags(count, (i) => ({
    platforms: PLATFORMS.map((platform) => {
      const name = [platform.architecture, platform.variant].filter(Boolean).join('-');
      return { platform, layers: [{ size: MiB, seed: `${seed}-base-${name}` }, { size: 256 * KiB, seed: `${seed}-${i}-${name}` }] };
    }),
  }));
}

const SPECS: Record<Fixture, () => Record<string, TagSpec>> = {
  // 16 tags x 4 layers of 2 MiB, the first shared by every tag.
  bulk: () =>
    tags(16, (i) => ({
      layers: [{ size: 2 * MiB, seed: 'bulk-shared' }, ...[1, 2, 3].map((k) => ({ size: 2 * MiB, seed: `bulk-${i}-${k}` }))],
    })),
  small: () => tags(200, (i) => ({ layers: [1, 2].map((k) => ({ size: 4 * KiB, seed: `small-${i}-${k}` })) })),
  // Many small behind a far link: fewer tags, or skopeo would take minutes.
  'far-small': () => tags(40, (i) => ({ layers: [1, 2].map((k) => ({ size: 4 * KiB, seed: `far-small-${i}-${k}` })) })),
  multiarch: () => multiarch(10, 'multi'),
  // Behind a far link skopeo takes 6 s a tag.
  'far-multiarch': () => multiarch(4, 'far-multi'),
  big: () => ({ v1: { layers: [{ size: 1024 * MiB, seed: 'big' }] } }),
  // Tags whose manifests a rationing source counts: small, so that its budget is all that takes time.
  budget: () => tags(12, (i) => ({ layers: [{ size: 4 * KiB, seed: `budget-${i}` }] })),
};

/** Generates the fixture's images as an OCI layout under `dir` and pushes them with skopeo to `host`. */
export async function seedFixture(fixture: Fixture, dir: string, host: string): Promise<SeededRepository> {
  const layout = join(dir, `layout-${fixture}`);
  const repository = `bench/${fixture}`;
  const specs = SPECS[fixture]();
  try {
    const built = await writeOciLayout(layout, specs);
    await seedLayout(layout, Object.keys(specs), { host, repository });
    const blobs = join(layout, 'blobs', 'sha256');
    const sizes = await Promise.all((await readdir(blobs)).map(async (name) => (await stat(join(blobs, name))).size));
    return { repository, tags: built, bytes: sizes.reduce((sum, size) => sum + size, 0) };
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}

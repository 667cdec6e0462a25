import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeOciLayout } from '../test/support/images.js';
import type { BuiltTag, Platform, TagSpec } from '../test/support/images.js';
import { seedLayout } from '../test/support/skopeo.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export type Fixture = 'bulk' | 'small' | 'remote' | 'multiarch' | 'big' | 'budget';

export interface SeededRepository {
  repository: string;
  tags: Record<string, BuiltTag>;
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

const SPECS: Record<Fixture, () => Record<string, TagSpec>> = {
  // 16 tags x 4 layers of 2 MiB, the first shared by every tag.
  bulk: () =>
    tags(16, (i) => ({
      layers: [{ size: 2 * MiB, seed: 'bulk-shared' }, ...[1, 2, 3].map((k) => ({ size: 2 * MiB, seed: `bulk-${i}-${k}` }))],
    })),
  small: () => tags(200, (i) => ({ layers: [1, 2].map((k) => ({ size: 4 * KiB, seed: `small-${i}-${k}` })) })),
  // Many small behind registries 10 ms away: fewer tags, or skopeo would take minutes.
  remote: () => tags(40, (i) => ({ layers: [1, 2].map((k) => ({ size: 4 * KiB, seed: `remote-${i}-${k}` })) })),
  // An index of 4 platforms per tag: a 1 MiB base per platform shared by the tags, plus 256 KiB of its own.
  multiarch: () =>
    tags(10, (i) => ({
      platforms: PLATFORMS.map((platform) => {
        const name = [platform.architecture, platform.variant].filter(Boolean).join('-');
        return { platform, layers: [{ size: MiB, seed: `multi-base-${name}` }, { size: 256 * KiB, seed: `multi-${i}-${name}` }] };
      }),
    })),
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
    return { repository, tags: built };
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}

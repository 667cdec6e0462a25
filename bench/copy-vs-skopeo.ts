/**
 * One multi-tag repository copied by `ferry copy` and by `skopeo sync`, alternately, between
 * the same two real registries on loopback. Prints each round and the median ratio.
 *   npm run bench:copy [-- --tags 40 --rounds 3]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { writeOciLayout, type TagSpec } from '../test/support/images.js';
import { startRegistry } from '../test/support/registry.js';
import { listTags, seedLayout } from '../test/support/skopeo.js';

const run = promisify(execFile);
const { values } = parseArgs({ options: { tags: { type: 'string', default: '40' }, rounds: { type: 'string', default: '3' } } });
const tagCount = Number(values.tags);
const rounds = Number(values.rounds);

const shared = { size: 2 * 1024 * 1024, seed: 'bench-base' };
const tags: Record<string, TagSpec> = {};
for (let i = 0; i < tagCount; i++) {
  tags[`v${i}`] = { layers: [shared, { size: 512 * 1024, seed: `bench-${i}-a` }, { size: 64 * 1024, seed: `bench-${i}-b` }] };
}

const layout = await mkdtemp(join(tmpdir(), 'ferry-bench-'));
const [, source, destination] = await Promise.all([writeOciLayout(layout, tags), startRegistry(), startRegistry()]);
try {
  await seedLayout(layout, Object.keys(tags), { host: source.host, repository: 'bench/app' });
  const cli = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
  const time = async (command: string, args: string[]) => {
    const started = performance.now();
    await run(command, args, { maxBuffer: 64 * 1024 * 1024 });
    return (performance.now() - started) / 1000;
  };
  const results: Array<{ round: number; ferry: number; skopeo: number }> = [];
  // Untimed: a fresh registry's first writes are slower, whichever tool makes them.
  await run(process.execPath, [cli, 'copy', `${source.host}/bench/app:v0`, `${destination.host}/warm-up/app:v0`]);
  for (let round = 1; round <= rounds; round++) {
    const runSkopeo = () => time('skopeo', [
      'sync', '--all', '--preserve-digests', '--src', 'docker', '--dest', 'docker',
      '--src-tls-verify=false', '--dest-tls-verify=false', `${source.host}/bench/app`, `${destination.host}/skopeo-${round}`,
    ]);
    const runFerry = () => time(process.execPath, [cli, 'copy', `${source.host}/bench/app`, `${destination.host}/ferry-${round}/app`]);
    // A B, then B A: neither tool always meets the registries cold.
    let ferry: number;
    let skopeo: number;
    if (round % 2 === 1) {
      skopeo = await runSkopeo();
      ferry = await runFerry();
    } else {
      ferry = await runFerry();
      skopeo = await runSkopeo();
    }
    for (const repository of [`skopeo-${round}/app`, `ferry-${round}/app`]) {
      const copied = await listTags({ host: destination.host, repository });
      if (copied.length !== tagCount) throw new Error(`${repository}: ${copied.length} tags, expected ${tagCount}`);
    }
    results.push({ round, ferry, skopeo });
    console.log(`round ${round}: ferry ${ferry.toFixed(2)} s, skopeo ${skopeo.toFixed(2)} s, ratio ${(ferry / skopeo).toFixed(2)}`);
  }
  const median = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const middle = sorted.length / 2;
    return Number.isInteger(middle) ? (sorted[middle - 1]! + sorted[middle]!) / 2 : sorted[Math.floor(middle)]!;
  };
  const ferry = median(results.map((r) => r.ferry));
  const skopeo = median(results.map((r) => r.skopeo));
  console.log(`${tagCount} tags x 3 layers (2 MiB shared, 512 KiB, 64 KiB): median ferry ${ferry.toFixed(2)} s, skopeo sync ${skopeo.toFixed(2)} s, ferry/skopeo ${(ferry / skopeo).toFixed(2)}`);
} finally {
  await Promise.all([source.stop(), destination.stop()]);
  await rm(layout, { recursive: true, force: true });
}

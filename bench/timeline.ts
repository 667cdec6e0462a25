/**
 * When each kind of request of one `ferry copy` leaves, over the far link (bench/link.ts): a
 * recording proxy sits in front of each registry's end of the link, so the times are those at
 * which ferry sent them, from the command's start. Tells start-up, round trips and transfer apart.
 *   npx tsx bench/timeline.ts [--fixture bulk|far-small|far-multiarch] [--noop]
 * --noop copies once first, then times a re-run that has nothing to copy.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFaultProxy, type ProxiedRequest } from '../test/support/fault-proxy.js';
import { startRegistry } from '../test/support/registry.js';
import { ferryCopy } from './copiers.js';
import { seedFixture, type Fixture } from './fixtures.js';
import { FAR_LINK, describeLink, startLink } from './link.js';

const FIXTURES: Fixture[] = ['bulk', 'far-small', 'far-multiarch'];
const { values } = parseArgs({ options: { fixture: { type: 'string', default: 'bulk' }, noop: { type: 'boolean', default: false } } });
const fixture = values.fixture as Fixture;
if (!FIXTURES.includes(fixture)) {
  console.error(`usage: tsx bench/timeline.ts [--fixture ${FIXTURES.join('|')}] [--noop]`);
  process.exit(2);
}

/** A request's kind: method, side and path with digests, tags and session ids left out. */
function kind(side: string, request: ProxiedRequest): string {
  const path = request.path
    .replace(/\/manifests\/.*/, '/manifests/*')
    .replace(/\/blobs\/uploads\/.+/, '/blobs/uploads/*')
    .replace(/\/blobs\/sha256:.*/, '/blobs/*')
    .replace(/\/referrers\/.*/, '/referrers/*');
  return `${side} ${request.method} ${path}`;
}

const dir = await mkdtemp(join(tmpdir(), 'ferry-timeline-'));
const [source, destination] = await Promise.all([startRegistry(), startRegistry()]);
const link = await startLink(FAR_LINK);
try {
  const seeded = await seedFixture(fixture, dir, source.host);
  const [farSource, farDestination] = await Promise.all([link.expose(source.host), link.expose(destination.host)]);
  const proxies = { src: await startFaultProxy(farSource), dst: await startFaultProxy(farDestination) };
  const copy = () => ferryCopy(proxies.src.host, seeded.repository, proxies.dst.host, `timeline/${fixture}`);
  if (values.noop) await copy();
  const from = { src: proxies.src.requests.length, dst: proxies.dst.requests.length };
  const started = Date.now();
  await copy();
  console.log(`${values.noop ? 'no-op re-run of' : 'copy of'} ${fixture} over ${describeLink(link.profile)}: ${Date.now() - started} ms`);
  const kinds = new Map<string, number[]>();
  for (const side of ['src', 'dst'] as const) {
    for (const request of proxies[side].requests.slice(from[side])) {
      const key = kind(side, request);
      kinds.set(key, [...(kinds.get(key) ?? []), request.at - started]);
    }
  }
  const rows = [...kinds].map(([key, at]) => ({ key, count: at.length, first: Math.min(...at), last: Math.max(...at) })).sort((a, b) => a.first - b.first);
  for (const row of rows) console.log(`${String(row.first).padStart(6)} ms to ${String(row.last).padStart(6)} ms  ${String(row.count).padStart(4)} × ${row.key}`);
  await Promise.all([proxies.src.stop(), proxies.dst.stop()]);
} finally {
  await Promise.all([link.stop(), source.stop(), destination.stop()]);
  await rm(dir, { recursive: true, force: true });
}

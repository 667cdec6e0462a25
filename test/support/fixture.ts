import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { writeOciLayout, type BuiltTag, type TagSpec } from './images.js';
import { startRegistry, type RunningRegistry } from './registry.js';
import { seedLayout } from './skopeo.js';

/** A source registry seeded with `tags` in `repository`, an empty destination, and a fault proxy before each. */
export interface ReplicationFixture {
  built: Record<string, BuiltTag>;
  source: RunningRegistry;
  destination: RunningRegistry;
  sourceProxy: FaultProxy;
  destinationProxy: FaultProxy;
  /** Drops the proxies' fault rules (between tests). */
  clearFaults(): void;
  stop(): Promise<void>;
}

export async function replicationFixture(tags: Record<string, TagSpec>, repository: string): Promise<ReplicationFixture> {
  const layout = await mkdtemp(join(tmpdir(), 'ferry-layout-'));
  const [built, source, destination] = await Promise.all([writeOciLayout(layout, tags), startRegistry(), startRegistry()]);
  await seedLayout(layout, Object.keys(tags), { host: source.host, repository });
  const [sourceProxy, destinationProxy] = await Promise.all([startFaultProxy(source.host), startFaultProxy(destination.host)]);
  return {
    built,
    source,
    destination,
    sourceProxy,
    destinationProxy,
    clearFaults() {
      sourceProxy.clearRules();
      destinationProxy.clearRules();
    },
    async stop() {
      await Promise.all([sourceProxy.stop(), destinationProxy.stop()]);
      await Promise.all([source.stop(), destination.stop()]);
      await rm(layout, { recursive: true, force: true });
    },
  };
}

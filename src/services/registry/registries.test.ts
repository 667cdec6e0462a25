import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../../test/support/registry.js';
import { Registries } from './registries.js';

let registry: RunningRegistry;

beforeAll(async () => {
  registry = await startRegistry();
});

afterAll(async () => {
  await registry?.stop();
});

describe('Registries', () => {
  it('shares one client until it is due for renewal, then resolves the login again and connects anew', async () => {
    const resolved: string[] = [];
    const replaced: Array<{ close(): Promise<void> }> = [];
    const registries = new Registries(
      async (url) => {
        resolved.push(url);
        return { registry: url };
      },
      { renewAfterMs: 400 },
    );
    try {
      const first = await registries.get(registry.host);
      replaced.push(first);
      expect(await registries.get(registry.host)).toBe(first);
      expect(resolved).toStrictEqual([registry.host]);
      await sleep(500);
      const renewed = await registries.get(registry.host);
      expect(renewed).not.toBe(first);
      expect(resolved).toStrictEqual([registry.host, registry.host]);
      expect(await registries.get(registry.host)).toBe(renewed);
    } finally {
      await Promise.all([registries.close(), ...replaced.map((client) => client.close())]);
    }
  });
});

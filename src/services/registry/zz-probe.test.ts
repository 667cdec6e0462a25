import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'vitest';
import { startRegistry } from '../../../test/support/registry.js';
import { writeOciLayout } from '../../../test/support/images.js';
import { seedLayout } from '../../../test/support/skopeo.js';
import { RegistryClient } from './client.js';

it('probe', async () => {
  const t0 = Date.now();
  const reg = await startRegistry();
  console.log('start', Date.now() - t0);
  const dir = await mkdtemp(join(tmpdir(), 'probe-'));
  const tags: Record<string, { layers: { size: number; seed: string }[] }> = {};
  for (let i = 0; i < 5; i++) tags[`t${i}`] = { layers: [{ size: 100, seed: 'x' }] };
  await writeOciLayout(dir, tags);
  const t1 = Date.now();
  await seedLayout(dir, Object.keys(tags), { host: reg.host, repository: 'app' });
  console.log('seed5', Date.now() - t1);
  for (const q of ['?n=2', '?n=2&last=t1', '']) {
    const r = await fetch(`${reg.url}/v2/app/tags/list${q}`);
    console.log(q, r.status, r.headers.get('link'), await r.text());
  }
  const d = await fetch(`${reg.url}/v2/app/manifests/t0`, { method: 'DELETE' });
  console.log('delete tag', d.status, await d.text());
  const t2 = Date.now();
  const c = await RegistryClient.connect({ registry: reg.host });
  console.log('connect', Date.now() - t2, c.baseUrl);
  try { await RegistryClient.connect({ registry: reg.host, insecure: false }); } catch (e) { console.log(e); }
  await c.close();
  await reg.stop();
});

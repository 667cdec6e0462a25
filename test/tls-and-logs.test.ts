import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ferry } from './support/ferry.js';
import { writeOciLayout, type BuiltTag } from './support/images.js';
import { DEFAULT_USER, startRegistry, type RunningRegistry } from './support/registry.js';
import { rawManifest, seedLayout } from './support/skopeo.js';

let layout: string;
let built: Record<string, BuiltTag>;
let secure: RunningRegistry;
let destination: RunningRegistry;

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-tls-'));
  [built, secure, destination] = await Promise.all([
    writeOciLayout(layout, { a: { layers: [{ size: 10_000, seed: 'tls-a' }] } }),
    startRegistry({ tls: true, auth: 'htpasswd' }),
    startRegistry(),
  ]);
  await seedLayout(layout, ['a'], { host: secure.host, repository: 'tls/app', creds: DEFAULT_USER });
});

afterAll(async () => {
  await Promise.all([secure?.stop(), destination?.stop()]);
  await rm(layout, { recursive: true, force: true });
});

const creds = `${DEFAULT_USER.username}:${DEFAULT_USER.password}`;

describe('TLS', () => {
  it('refuses a certificate it cannot verify, and does not fall back to plain HTTP', async () => {
    const result = await ferry(['copy', `${secure.host}/tls/app:a`, `${destination.host}/tls/refused:a`, '--src-creds', creds]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: ping 127\.0\.0\.1:\d+: TLS failed: .*self-signed certificate/m);
  });

  it('trusts a registry whose CA is given with --src-ca', async () => {
    const result = await ferry(['copy', `${secure.host}/tls/app:a`, `${destination.host}/tls/ca:a`, '--src-creds', creds, '--src-ca', secure.caFile!]);
    expect(result.code, result.stderr).toBe(0);
    expect((await rawManifest({ host: destination.host, repository: 'tls/ca', tag: 'a' })).digest).toBe(built.a!.digest);
  });

  it('skips verification with --src-insecure', async () => {
    const result = await ferry(['copy', `${secure.host}/tls/app:a`, `${destination.host}/tls/insecure:a`, '--src-creds', creds, '--src-insecure']);
    expect(result.code, result.stderr).toBe(0);
  });
});

describe('--log-format json', () => {
  it('prints one pino record per line, with the job\'s events and no secret', async () => {
    const result = await ferry(['copy', `${secure.host}/tls/app`, `${destination.host}/logs/app`, '--src-insecure', '--log-format', 'json'], {
      FERRY_SRC_CREDS: creds,
    });
    expect(result.code, result.stderr).toBe(0);
    const records = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { msg: string; level: number; item?: { target: string }; digest?: string });
    expect(records.map((r) => r.msg)).toEqual(expect.arrayContaining(['job started', 'tag.copied', 'job finished']));
    expect(records.find((r) => r.msg === 'tag.copied')).toMatchObject({ item: { target: 'a' }, digest: built.a!.digest });
    expect(result.stdout + result.stderr).not.toContain(DEFAULT_USER.password);
    expect(result.stdout).not.toContain(Buffer.from(creds).toString('base64'));
  });
});

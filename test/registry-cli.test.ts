import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ferry } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { attachReferrer } from './support/referrers.js';
import { DEFAULT_USER, startRegistry, type RunningRegistry } from './support/registry.js';

let fixture: ReplicationFixture;
let sbom: string;
let guarded: RunningRegistry;

const platform = (architecture: string) => ({ layers: [{ size: 20_000, seed: `ls-${architecture}` }], platform: { os: 'linux', architecture } });

beforeAll(async () => {
  fixture = await replicationFixture(
    {
      '1.0': { layers: [{ size: 10_000, seed: 'ls-1' }, { size: 5_000, seed: 'ls-1b' }] },
      '2.0': { layers: [{ size: 10_000, seed: 'ls-2' }], platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      multi: { platforms: [platform('amd64'), platform('arm64')] },
    },
    'team/app',
  );
  sbom = (await attachReferrer(fixture.source.host, 'team/app', fixture.built.multi!.digest, { artifactType: 'application/spdx+json', content: Buffer.from('{"spdxVersion":"SPDX-2.3"}'), mediaType: 'application/spdx+json' })).digest;
  guarded = await startRegistry({ auth: 'htpasswd' });
});

afterEach(() => fixture.clearFaults());

afterAll(async () => {
  await guarded?.stop();
  await fixture?.stop();
});

describe('ferry ls', () => {
  it("prints a repository's tags, sorted one a line (the referrers' fallback tags too)", async () => {
    const result = await ferry(['ls', `${fixture.source.host}/team/app`]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(['1.0', '2.0', 'multi', fixture.built.multi!.digest.replace(':', '-')].join('\n') + '\n');
  });

  it('logs in with --creds, and a registry that needs them says so without', async () => {
    const refused = await ferry(['ls', `${guarded.host}/none/here`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^ferry: .*401/m);
    const listed = await ferry(['ls', `${guarded.host}/none/here`, '--creds', `${DEFAULT_USER.username}:${DEFAULT_USER.password}`]);
    expect(listed.stderr).not.toContain(DEFAULT_USER.password);
    expect(listed.stderr).toMatch(/404 NAME_UNKNOWN/);
  });

  it('takes a repository, not a tag', async () => {
    const result = await ferry(['ls', `${fixture.source.host}/team/app:1.0`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`ferry: ls takes a repository, not a tag or digest: ${fixture.source.host}/team/app:1.0 (see ferry ls --help)\n`);
  });
});

describe('ferry inspect', () => {
  it("shows an index's digest, media type, platforms, size and referrers", async () => {
    const multi = fixture.built.multi!;
    const result = await ferry(['inspect', `${fixture.source.host}/team/app:multi`]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`digest:     ${multi.digest}\n`);
    expect(result.stdout).toContain(`media type: ${multi.mediaType}\n`);
    expect(result.stdout).not.toContain('platform: ');
    expect(result.stdout).toMatch(new RegExp(`^linux/amd64\\s+${multi.manifests[0]}\\s+20\\.\\d KiB$`, 'm'));
    expect(result.stdout).toMatch(new RegExp(`^linux/arm64\\s+${multi.manifests[1]}\\s+20\\.\\d KiB$`, 'm'));
    expect(result.stdout).toMatch(new RegExp(`^${sbom}\\s+application/spdx\\+json`, 'm'));
  });

  it('prints JSON with --json, the size counting manifests, configs and layers', async () => {
    const result = await ferry(['inspect', `${fixture.source.host}/team/app:1.0`, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const inspection = JSON.parse(result.stdout) as { digest: string; size: number; platform: string | null; platforms: unknown[]; referrers: unknown[] };
    expect(inspection.digest).toBe(fixture.built['1.0']!.digest);
    expect(inspection.platform).toBe('linux/amd64');
    expect(inspection.size).toBeGreaterThan(15_000);
    expect(inspection.size).toBeLessThan(17_000);
    expect(inspection.platforms).toEqual([]);
    expect(inspection.referrers).toEqual([]);
  });

  it("shows a single image's platform, read from its config", async () => {
    const result = await ferry(['inspect', `${fixture.source.host}/team/app:2.0`]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('\nplatform:   linux/arm/v7\n');
  });

  it('needs a tag or digest, and names one that is absent', async () => {
    const bare = await ferry(['inspect', `${fixture.source.host}/team/app`]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^ferry: inspect takes a tag or digest: .* \(see ferry inspect --help\)\n$/);
    const absent = await ferry(['inspect', `${fixture.source.host}/team/app:9.9`]);
    expect(absent.code).toBe(1);
    expect(absent.stderr).toMatch(/team\/app:9\.9.*404/);
  });
});

describe('ferry copy off a terminal', () => {
  it('prints a progress line every --progress seconds', async () => {
    fixture.sourceProxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, fault: { type: 'throttle', bytesPerSecond: 40_000 } });
    const result = await ferry(['copy', `${fixture.sourceProxy.host}/team/app`, `${fixture.destination.host}/progress/app`, '--tags', '1.0', '--tags', '2.0', '--progress', '0.1']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split('\n').filter((line) => line.startsWith('progress: '));
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(line).toMatch(/^progress: \d\/\d tags, \d+ blobs?, [\d.]+ (B|KiB)$/);
    // Throttled, the job is seen midway: tags listed, bytes moving.
    expect(lines.some((line) => /^progress: [01]\/2 tags, \d+ blobs?, [1-9][\d.]* KiB$/.test(line))).toBe(true);
  });

  it('prints none with --progress 0, and takes only a number of seconds', async () => {
    const result = await ferry(['copy', `${fixture.source.host}/team/app:2.0`, `${fixture.destination.host}/quiet/app:2.0`, '--progress', '0']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toContain('progress:');
    const bad = await ferry(['copy', `${fixture.source.host}/team/app:2.0`, `${fixture.destination.host}/quiet/app:2.0`, '--progress', 'often']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('ferry: --progress takes a number of seconds, not "often" (see ferry copy --help)\n');
  });

  it('--log-level debug shows the blob progress records that info leaves out', async () => {
    const args = ['copy', `${fixture.source.host}/team/app:1.0`, `${fixture.destination.host}/levels/app:1.0`, '--log-format', 'json'];
    const info = await ferry(args);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain('"msg":"job finished"');
    expect(info.stdout).not.toContain('"level":20');
    const debug = await ferry([...args.slice(0, 2), `${fixture.destination.host}/levels/debug:1.0`, ...args.slice(3), '--log-level', 'debug']);
    expect(debug.code, debug.stderr).toBe(0);
    expect(debug.stdout).toMatch(/"level":20,.*"msg":"blob\.progress"/);
    const quiet = await ferry([...args.slice(0, 2), `${fixture.destination.host}/levels/quiet:1.0`, ...args.slice(3), '--log-level', 'error']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toBe('');
  });
});

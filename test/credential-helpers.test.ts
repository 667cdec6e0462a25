import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FerryService } from '../src/services/service.js';
import { pathWith, writeCredentialHelper, type CredentialHelper } from './support/credential-helpers.js';
import { databases, ENGINES } from './support/databases.js';
import { ferry } from './support/ferry.js';
import { writeOciLayout } from './support/images.js';
import { DEFAULT_USER, startRegistry, type RunningRegistry } from './support/registry.js';
import { listTags, rawManifest, seedLayout } from './support/skopeo.js';

/** The identity token the Bearer registry's token server takes. */
const REFRESH_TOKEN = 'S3CRET-identity-token-e2e';
/** What the failing helper prints on stdout: it must show up nowhere. */
const LEAKED = 'S3CRET-printed-by-a-failing-helper';
const BASIC = Buffer.from(`${DEFAULT_USER.username}:${DEFAULT_USER.password}`).toString('base64');

let dir: string;
let bin: string;
let source: RunningRegistry;
let locked: RunningRegistry;
let bearer: RunningRegistry;
let digest: string;
/** Answers DEFAULT_USER for the htpasswd registry, an identity token for the Bearer one. */
let helper: CredentialHelper;
/** Has nothing for any registry. */
let empty: CredentialHelper;
/** Exits 1, printing a secret on stdout and its reason on stderr. */
let broken: CredentialHelper;
let configs = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-credential-helpers-'));
  bin = join(dir, 'bin');
  await mkdir(bin);
  const layout = join(dir, 'layout');
  let built;
  [built, source, locked, bearer] = await Promise.all([
    writeOciLayout(layout, { v1: { layers: [{ size: 20_000, seed: 'credential-helpers' }] } }),
    startRegistry(),
    startRegistry({ auth: 'htpasswd' }),
    startRegistry({ auth: 'token', refreshToken: REFRESH_TOKEN }),
  ]);
  digest = built.v1!.digest;
  await seedLayout(layout, ['v1'], { host: source.host, repository: 'team/app' });
  [helper, empty, broken] = await Promise.all([
    writeCredentialHelper(bin, 'ferrytest', {
      logins: {
        [locked.host]: { Username: DEFAULT_USER.username, Secret: DEFAULT_USER.password },
        [bearer.host]: { Username: '<token>', Secret: REFRESH_TOKEN },
      },
    }),
    writeCredentialHelper(bin, 'ferrytest-empty', { logins: {} }),
    writeCredentialHelper(bin, 'ferrytest-broken', { exit: 1, stdout: `{"Secret":"${LEAKED}"}`, stderr: 'token expired; log in again\n' }),
  ]);
});

afterAll(async () => {
  await Promise.all([source?.stop(), locked?.stop(), bearer?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

/** A docker config directory holding `config`, and the environment that points ferry at it and at the helpers. */
async function dockerConfig(config: object): Promise<NodeJS.ProcessEnv> {
  const configDir = join(dir, `docker-config-${configs++}`);
  await mkdir(configDir);
  await writeFile(join(configDir, 'config.json'), JSON.stringify(config));
  return { PATH: pathWith(bin), DOCKER_CONFIG: configDir };
}

const callsFor = async (h: CredentialHelper, registry: string) => (await h.calls()).filter((call) => call.input === registry).length;

function expectNoSecret(text: string): void {
  for (const secret of [DEFAULT_USER.password, BASIC, REFRESH_TOKEN, LEAKED]) expect(text).not.toContain(secret);
}

describe('ferry copy with docker credential helpers', () => {
  it("logs in with the helper credHelpers names for the registry, and the image arrives", async () => {
    const before = await callsFor(helper, locked.host);
    const result = await ferry(['copy', `${source.host}/team/app:v1`, `${locked.host}/helped/app:v1`], await dockerConfig({ credHelpers: { [locked.host]: helper.name } }));
    expect(result.code, result.stderr).toBe(0);
    expect(await callsFor(helper, locked.host)).toBeGreaterThan(before);
    expect((await rawManifest({ host: locked.host, repository: 'helped/app', tag: 'v1', creds: DEFAULT_USER })).digest).toBe(digest);
    expectNoSecret(result.stdout + result.stderr);
  });

  it('logs in with the credsStore helper, found through HOME as docker finds it', async () => {
    const home = join(dir, 'home');
    await mkdir(join(home, '.docker'), { recursive: true });
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ credsStore: helper.name }));
    const result = await ferry(['copy', `${source.host}/team/app:v1`, `${locked.host}/stored/app:v1`], { PATH: pathWith(bin), HOME: home, DOCKER_CONFIG: '' });
    expect(result.code, result.stderr).toBe(0);
    expect(await listTags({ host: locked.host, repository: 'stored/app', creds: DEFAULT_USER })).toEqual(['v1']);
  });

  it("prefers the registry's own helper to the store, and the store to auths", async () => {
    const wrong = Buffer.from(`${DEFAULT_USER.username}:not-the-password`).toString('base64');
    const env = await dockerConfig({
      credHelpers: { [source.host]: empty.name, [locked.host]: helper.name },
      credsStore: broken.name,
      auths: { [locked.host]: { auth: wrong } },
    });
    const brokenBefore = (await broken.calls()).length;
    const result = await ferry(['copy', `${source.host}/team/app:v1`, `${locked.host}/preferred/app:v1`], env);
    expect(result.code, result.stderr).toBe(0);
    expect((await broken.calls()).length).toBe(brokenBefore);
    expect(await callsFor(empty, source.host)).toBeGreaterThan(0);
    expect(await listTags({ host: locked.host, repository: 'preferred/app', creds: DEFAULT_USER })).toEqual(['v1']);
  });

  it('goes anonymous when the helper has nothing for the registry, whatever auths holds, as docker does', async () => {
    const env = await dockerConfig({ credHelpers: { [locked.host]: empty.name }, auths: { [locked.host]: { auth: BASIC } } });
    const result = await ferry(['copy', `${source.host}/team/app:v1`, `${locked.host}/anonymous/app:v1`], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${locked.host} needs credentials`);
    expect(await callsFor(empty, locked.host)).toBeGreaterThan(0);
  });

  it('fails naming the helper and the registry when the helper fails, never with what it printed', async () => {
    const result = await ferry(['copy', `${source.host}/team/app:v1`, `${locked.host}/broken/app:v1`], await dockerConfig({ credHelpers: { [locked.host]: broken.name } }));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`credential helper docker-credential-${broken.name} for ${locked.host} failed (exit code 1): token expired; log in again`);
    expectNoSecret(result.stdout + result.stderr);
  });

  it('fails saying so when the helper is not on PATH', async () => {
    const result = await ferry(['copy', `${source.host}/team/app:v1`, `${locked.host}/missing/app:v1`], await dockerConfig({ credsStore: 'ferrytest-not-installed' }));
    expect(result.code).toBe(1);
    // The store serves both registries, which connect together: either may be the one named.
    const either = [source.host, locked.host].map((host) => host.replace(/\./g, '\\.')).join('|');
    expect(result.stderr).toMatch(new RegExp(`credential helper docker-credential-ferrytest-not-installed for (${either}): docker-credential-ferrytest-not-installed is not on PATH`));
  });

  it('takes --dest-creds before any helper', async () => {
    const env = await dockerConfig({ credHelpers: { [locked.host]: broken.name } });
    const before = (await broken.calls()).length;
    const result = await ferry(['copy', `${source.host}/team/app:v1`, `${locked.host}/flagged/app:v1`, '--dest-creds', `${DEFAULT_USER.username}:${DEFAULT_USER.password}`], env);
    expect(result.code, result.stderr).toBe(0);
    expect((await broken.calls()).length).toBe(before);
    expect(await listTags({ host: locked.host, repository: 'flagged/app', creds: DEFAULT_USER })).toEqual(['v1']);
  });
});

describe('ferry copy with an identity token', () => {
  it('trades the identitytoken of auths for access tokens with the OAuth2 refresh-token POST', async () => {
    const before = bearer.tokenRefreshes!.length;
    const result = await ferry(['copy', `${source.host}/team/app:v1`, `${bearer.host}/oauth/app:v1`], await dockerConfig({ auths: { [bearer.host]: { identitytoken: REFRESH_TOKEN } } }));
    expect(result.code, result.stderr).toBe(0);
    const refreshes = bearer.tokenRefreshes!.slice(before);
    expect(refreshes.length).toBeGreaterThan(0);
    for (const form of refreshes) {
      expect(form).toMatchObject({ grant_type: 'refresh_token', refresh_token: REFRESH_TOKEN, client_id: 'ferry', service: 'ferry-registry', scope: expect.stringContaining('repository:oauth/app:') });
    }
    expect((await rawManifest({ host: bearer.host, repository: 'oauth/app', tag: 'v1', creds: DEFAULT_USER })).digest).toBe(digest);
    expectNoSecret(result.stdout + result.stderr);
  });

  it('takes a helper answering the username <token> as an identity token', async () => {
    const before = bearer.tokenRefreshes!.length;
    const result = await ferry(['copy', `${source.host}/team/app:v1`, `${bearer.host}/token-helper/app:v1`], await dockerConfig({ credHelpers: { [bearer.host]: helper.name } }));
    expect(result.code, result.stderr).toBe(0);
    expect(bearer.tokenRefreshes!.slice(before).map((form) => form.refresh_token)).toContain(REFRESH_TOKEN);
    expect(await listTags({ host: bearer.host, repository: 'token-helper/app', creds: DEFAULT_USER })).toEqual(['v1']);
  });

  it('fails naming the registry, never the token, when the token server refuses it', async () => {
    const result = await ferry(['copy', `${source.host}/team/app:v1`, `${bearer.host}/refused/app:v1`], await dockerConfig({ auths: { [bearer.host]: { identitytoken: `${REFRESH_TOKEN}-revoked` } } }));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`the identity token for ${bearer.host} was refused`);
    expectNoSecret(result.stdout + result.stderr);
  });
});

describe('ferry sync with a registry whose login comes from a credential helper', () => {
  it('replicates through the policy, asking the helper', async () => {
    const path = join(dir, 'ferry.yaml');
    await writeFile(path, `
registries:
  - { name: upstream, url: "${source.host}" }
  - { name: mirror, url: "${locked.host}", credentialHelper: ${helper.name} }
policies:
  - { name: to-mirror, source: upstream, destination: mirror, repositories: { include: ["team/**"] }, rewrite: { namespace: synced, flatten: 1 } }
`);
    const before = await callsFor(helper, locked.host);
    const result = await ferry(['sync', '-c', path], { PATH: pathWith(bin) });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^to-mirror\s+finished\s+1\s+1\s+0\s+0\s+1\s/m);
    expect(await callsFor(helper, locked.host)).toBeGreaterThan(before);
    expect((await rawManifest({ host: locked.host, repository: 'synced/app', tag: 'v1', creds: DEFAULT_USER })).digest).toBe(digest);
    expectNoSecret(result.stdout + result.stderr);
  });
});

describe.each(ENGINES)('the service on %s, with a registry setting naming a helper', (engine) => {
  const stores = databases(engine, () => dir);
  let service: FerryService;
  let lines: string[];

  async function start(): Promise<FerryService> {
    lines = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    service = await FerryService.start({ database: await stores.fresh('helpers'), workers: 2, logger });
    return service;
  }

  async function finished(executionId: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    while ((await service.store.executions.get(executionId))?.finishedAt == null) {
      if (Date.now() > deadline) throw new Error(`execution ${executionId} did not finish`);
      await sleep(25);
    }
  }

  afterEach(async () => {
    vi.unstubAllEnvs();
    await service?.close();
  });

  afterAll(() => stores.dropAll());

  it('asks the helper at each connect, replicates, and keeps its secret out of logs, job records and the API', async () => {
    vi.stubEnv('PATH', pathWith(bin));
    const s = await start();
    const upstream = await s.settings.addRegistry({ name: 'upstream', url: source.host });
    const mirror = await s.settings.addRegistry({ name: 'mirror', url: locked.host, credentialHelper: helper.name });
    const policy = await s.settings.addPolicy({ name: 'to-mirror', sourceRegistryId: upstream.id, destinationRegistryId: mirror.id, rewrite: { namespace: `service-${engine}`, flatten: 1 } });
    const { execution, jobs } = await s.settings.trigger(policy.id);
    await finished(execution.id);
    expect(await s.store.jobs.get(jobs[0]!.id)).toMatchObject({ status: 'finished' });
    expect((await rawManifest({ host: locked.host, repository: `service-${engine}/app`, tag: 'v1', creds: DEFAULT_USER })).digest).toBe(digest);

    const before = await callsFor(helper, locked.host);
    await s.ping(mirror);
    await s.ping(mirror);
    expect(await callsFor(helper, locked.host)).toBe(before + 2);

    const records = JSON.stringify([await s.store.jobs.get(jobs[0]!.id), await s.store.jobs.logs(jobs[0]!.id), await s.store.jobs.history(jobs[0]!.id), await s.store.registries.list()]);
    expect(records).toContain(helper.name);
    expectNoSecret(records + lines.join(''));
  });

  it('fails the job naming the helper and the registry when the helper fails, and records none of its output', async () => {
    vi.stubEnv('PATH', pathWith(bin));
    const s = await start();
    const upstream = await s.settings.addRegistry({ name: 'upstream', url: source.host });
    const mirror = await s.settings.addRegistry({ name: 'mirror', url: locked.host, credentialHelper: broken.name });
    const policy = await s.settings.addPolicy({ name: 'to-mirror', sourceRegistryId: upstream.id, destinationRegistryId: mirror.id });
    const { execution, jobs } = await s.settings.trigger(policy.id);
    await finished(execution.id);
    const job = await s.store.jobs.get(jobs[0]!.id);
    expect(job).toMatchObject({ status: 'error', error: { message: expect.stringContaining(`credential helper docker-credential-${broken.name} for ${locked.host} failed (exit code 1): token expired`) } });
    const records = JSON.stringify([job, await s.store.jobs.logs(jobs[0]!.id), await s.store.jobs.history(jobs[0]!.id)]);
    expectNoSecret(records + lines.join(''));
  });
});

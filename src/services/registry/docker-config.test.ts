import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pathWith, suiteHelperDir, writeCredentialHelper } from '../../../test/support/credential-helpers.js';
import { dockerConfigLogin } from './docker-config.js';
import { RegistryError } from './errors.js';

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const username = fc.string({ minLength: 1 }).filter((u) => !u.includes(':'));
const password = fc.string({ unit: 'binary', minLength: 1 });
const secret = fc.string({ unit: 'binary' }).map((s) => `S3CRET-${s}`);

describe('dockerConfigLogin', () => {
  let dir: string;
  let counter = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-credentials-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function configFile(contents: unknown): Promise<string> {
    const path = join(dir, `config-${counter++}.json`);
    await writeFile(path, typeof contents === 'string' ? contents : JSON.stringify(contents));
    return path;
  }

  async function lookup(registry: string, auths: unknown): Promise<unknown> {
    return dockerConfigLogin(registry, { configPath: await configFile({ auths }) });
  }

  const alice = { username: 'alice', password: 'pa:ss' };
  const aliceAuth = { auth: base64('alice:pa:ss') };

  it.each([
    ['ghcr.io', { 'ghcr.io': aliceAuth }],
    ['ghcr.io', { 'https://ghcr.io': aliceAuth }],
    ['ghcr.io', { 'http://ghcr.io/': aliceAuth }],
    ['ghcr.io', { 'https://ghcr.io/v1/': aliceAuth }],
    ['ghcr.io', { 'https://ghcr.io/v2/': aliceAuth }],
    ['ghcr.io', { 'HTTPS://GHCR.IO/v2': aliceAuth }],
    ['localhost:5000', { 'http://localhost:5000': aliceAuth }],
    ['docker.io', { 'https://index.docker.io/v1/': aliceAuth }],
    ['docker.io', { 'index.docker.io': aliceAuth }],
    ['docker.io', { 'registry-1.docker.io': aliceAuth }],
    ['docker.io', { 'docker.io': aliceAuth }],
    ['registry-1.docker.io', { 'https://index.docker.io/v1/': aliceAuth }],
    ['ghcr.io', { 'ghcr.io': { username: 'alice', password: 'pa:ss' } }],
    ['ghcr.io', { 'ghcr.io': { ...aliceAuth, username: 'bob', password: 'other' } }],
    ['ghcr.io', { 'ghcr.io': {}, 'https://ghcr.io': aliceAuth }],
  ])('finds credentials for %s in %j', async (registry, auths) => {
    expect(await lookup(registry, auths)).toStrictEqual(alice);
  });

  it('prefers the key docker login writes for Docker Hub', async () => {
    const auths = { 'registry-1.docker.io': { auth: base64('bob:b') }, 'https://index.docker.io/v1/': aliceAuth };
    expect(await lookup('docker.io', auths)).toStrictEqual(alice);
  });

  it.each([
    ['ghcr.io', { 'quay.io': aliceAuth }],
    ['ghcr.io', { 'ghcr.io:443': aliceAuth }],
    ['ghcr.io', { 'ghcr.io/org': aliceAuth }],
    ['ghcr.io', { 'https://ghcr.io/v3/': aliceAuth }],
    ['localhost:5000', { localhost: aliceAuth }],
    ['quay.io', { 'https://index.docker.io/v1/': aliceAuth }],
    ['ghcr.io', { 'ghcr.io': {} }],
    ['ghcr.io', { 'ghcr.io': { auth: '' } }],
    ['ghcr.io', {}],
    ['ghcr.io', undefined],
  ])('finds nothing for %s in %j', async (registry, auths) => {
    expect(await lookup(registry, auths)).toBeUndefined();
  });

  it('takes an identity token before a username and password beside it, as docker does', async () => {
    expect(await lookup('ghcr.io', { 'ghcr.io': { ...aliceAuth, identitytoken: 'refresh-token' } })).toStrictEqual({ identityToken: 'refresh-token' });
    expect(await lookup('docker.io', { 'https://index.docker.io/v1/': { identitytoken: 'hub-token' } })).toStrictEqual({ identityToken: 'hub-token' });
  });

  it('returns undefined when the file does not exist', async () => {
    expect(await dockerConfigLogin('ghcr.io', { configPath: join(dir, 'missing.json') })).toBeUndefined();
  });

  it('reads $DOCKER_CONFIG/config.json', async () => {
    const configDir = join(dir, 'docker-config');
    await mkdir(configDir);
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ auths: { 'ghcr.io': aliceAuth } }));
    expect(await dockerConfigLogin('ghcr.io', { env: { DOCKER_CONFIG: configDir } })).toStrictEqual(alice);
  });

  it('reads ~/.docker/config.json, taking HOME from the given environment', async () => {
    const home = join(dir, 'home');
    await mkdir(join(home, '.docker'), { recursive: true });
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'ghcr.io': aliceAuth } }));
    expect(await dockerConfigLogin('ghcr.io', { env: { HOME: home, DOCKER_CONFIG: '' } })).toStrictEqual(alice);
    expect(await dockerConfigLogin('ghcr.io', { env: { HOME: join(dir, 'nowhere') } })).toBeUndefined();
  });

  it('uses process.env by default', async () => {
    const configDir = join(dir, 'process-env');
    await mkdir(configDir);
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ auths: { 'ghcr.io': aliceAuth } }));
    vi.stubEnv('DOCKER_CONFIG', configDir);
    try {
      expect(await dockerConfigLogin('ghcr.io')).toStrictEqual(alice);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('rejects a file that is not JSON, naming the file and not quoting it', async () => {
    const path = await configFile('{"auths": {"ghcr.io": {"auth": "c2VjcmV0OnMzY3JldA==" ');
    const error = await dockerConfigLogin('ghcr.io', { configPath: path }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ code: 'INVALID_CONFIG', message: `Docker config ${path} is not valid JSON` });
    expect((error as Error).cause).toBeUndefined();
  });

  it('rejects a file it cannot read', async () => {
    const path = await configFile({});
    await chmod(path, 0o000);
    const unreadable = await dockerConfigLogin('ghcr.io', { configPath: path }).catch((e: unknown) => e);
    const directory = await dockerConfigLogin('ghcr.io', { configPath: dir }).catch((e: unknown) => e);
    expect(directory).toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringContaining(`cannot read Docker config ${dir}`) });
    // Root reads anything, so only the directory case is certain everywhere.
    if (unreadable !== undefined) expect(unreadable).toMatchObject({ code: 'INVALID_CONFIG' });
  });

  it.each([
    [[], /Docker config .* is not a JSON object/],
    [{ auths: [] }, /"auths" in Docker config .* is not an object/],
    [{ auths: { 'ghcr.io': 'x' } }, /auths\["ghcr.io"\] in Docker config .* is not an object/],
    [{ auths: { 'ghcr.io': { auth: 'not base64!' } } }, /auths\["ghcr.io"\] in Docker config .* has an "auth" that is not base64/],
    [{ auths: { 'ghcr.io': { auth: 42 } } }, /has an "auth" that is not base64/],
    [{ auths: { 'ghcr.io': { auth: base64('S3CRET') } } }, /decoded "auth" of auths\["ghcr.io"\] .* must have the form "username:password"/],
    [{ auths: { 'ghcr.io': { auth: base64('alice:') } } }, /has an empty password for user "alice"/],
    [{ auths: { 'ghcr.io': { username: 'alice' } } }, /must have string "username" and "password" fields/],
    [{ auths: { 'ghcr.io': { username: 'a:b', password: 'S3CRET' } } }, /has a username containing ":"/],
    [{ auths: { 'ghcr.io': { identitytoken: ['S3CRET'] } } }, /auths\["ghcr.io"\] in Docker config .* has an "identitytoken" that is not a string/],
    [{ credHelpers: ['S3CRET'] }, /"credHelpers" in Docker config .* is not an object/],
    [{ credHelpers: { 'ghcr.io': 42 } }, /credHelpers\["ghcr.io"\] in Docker config .* is not a helper name/],
    [{ credsStore: { name: 'S3CRET' } }, /"credsStore" in Docker config .* is not a helper name/],
    [{ credsStore: '../evil' }, /"..\/evil" is not a credential helper name/],
  ])('rejects %j', async (config, reason) => {
    const error = await dockerConfigLogin('ghcr.io', { configPath: await configFile(config) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(reason) });
    expect((error as Error).message).not.toContain('S3CRET');
  });

  it('finds credentials written under any accepted key form', async () => {
    const registry = fc.oneof(
      fc.constantFrom('docker.io', 'localhost:5000', '[::1]:5000'),
      fc.stringMatching(/^[a-z][a-z0-9]{0,8}\.[a-z]{2,4}(?::[1-9][0-9]{0,3})?$/),
    );
    const keyForm = fc.constantFrom('', 'https://', 'http://').chain((scheme) =>
      fc.constantFrom('', '/', '/v1/', '/v2/', '/v2').map((suffix) => [scheme, suffix] as const),
    );
    await fc.assert(
      fc.asyncProperty(registry, keyForm, username, password, fc.boolean(), async (r, [scheme, suffix], u, p, asAuth) => {
        const host = r === 'docker.io' ? 'index.docker.io' : r;
        const entry = asAuth ? { auth: base64(`${u}:${p}`) } : { username: u, password: p };
        const path = await configFile({ auths: { 'other.example.com': { auth: base64('x:y') }, [`${scheme}${host}${suffix}`]: entry } });
        expect(await dockerConfigLogin(r, { configPath: path })).toStrictEqual({ username: u, password: p });
      }),
      { numRuns: 50 },
    );
  });

  it('never throws anything but RegistryError on arbitrary file contents, and never leaks the password', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary' }), fc.json(), secret.map((s) => `{"auths":{"r.io":{"auth":"${base64(s)}"}}`)), async (text) => {
        const path = await configFile(text);
        const result = await dockerConfigLogin('r.io', { configPath: path }).catch((error: unknown) => {
          expect(error).toBeInstanceOf(RegistryError);
          expect((error as Error).message).not.toContain('S3CRET');
          return undefined;
        });
        if (result !== undefined) expect(typeof ('password' in result ? result.password : result.identityToken)).toBe('string');
      }),
      { numRuns: 50 },
    );
  });
});

describe('dockerConfigLogin with credential helpers', () => {
  const SECRET = 'S3CRET-helper-91c4';
  const dir = suiteHelperDir('docker-helpers');
  let counter = 0;

  /** A helper that answers `username` for these servers, and "credentials not found" for any other. */
  const answering = (username: string, servers: string[]) =>
    writeCredentialHelper(dir(), `h${counter++}`, { logins: Object.fromEntries(servers.map((server) => [server, { Username: username, Secret: SECRET }])) });
  const failing = () => writeCredentialHelper(dir(), `h${counter++}`, { exit: 1, stdout: SECRET, stderr: 'keychain locked' });

  async function lookup(registry: string, config: object): Promise<unknown> {
    await writeFile(join(dir(), 'config.json'), JSON.stringify(config));
    return dockerConfigLogin(registry, { env: { PATH: pathWith(dir()), DOCKER_CONFIG: dir() } });
  }

  it("asks the registry's own helper, with the registry host on stdin", async () => {
    const own = await answering('robot', ['ghcr.io']);
    expect(await lookup('ghcr.io', { credHelpers: { 'ghcr.io': own.name } })).toStrictEqual({ username: 'robot', password: SECRET });
    expect(await own.calls()).toMatchObject([{ args: ['get'], input: 'ghcr.io' }]);
  });

  it("prefers the registry's own helper to the store, and the store to auths", async () => {
    const [own, store] = [await answering('own', ['ghcr.io']), await answering('store', ['ghcr.io', 'quay.io'])];
    const config = { credHelpers: { 'ghcr.io': own.name, 'gcr.io': 'not-consulted' }, credsStore: store.name, auths: { 'ghcr.io': { auth: base64('file:f') }, 'quay.io': { auth: base64('file:f') } } };
    expect(await lookup('ghcr.io', config)).toStrictEqual({ username: 'own', password: SECRET });
    expect(await lookup('quay.io', config)).toStrictEqual({ username: 'store', password: SECRET });
    expect((await store.calls()).map((call) => call.input)).toStrictEqual(['quay.io']);
  });

  it('does not fall back on a failing store when the registry has its own helper', async () => {
    const [own, store] = [await answering('own', ['ghcr.io']), await failing()];
    expect(await lookup('ghcr.io', { credHelpers: { 'https://ghcr.io': own.name }, credsStore: store.name })).toStrictEqual({ username: 'own', password: SECRET });
    expect(await store.calls()).toStrictEqual([]);
  });

  it('is anonymous when the store has nothing for the registry, whatever auths holds (as docker)', async () => {
    const store = await answering('store', ['quay.io']);
    expect(await lookup('ghcr.io', { credsStore: store.name, auths: { 'ghcr.io': { auth: base64('file:f') } } })).toBeUndefined();
    expect(await store.calls()).toMatchObject([{ input: 'ghcr.io' }]);
  });

  it("asks for Docker Hub's login under the server URL docker keeps it under", async () => {
    const store = await answering('hub', ['https://index.docker.io/v1/']);
    expect(await lookup('docker.io', { credsStore: store.name })).toStrictEqual({ username: 'hub', password: SECRET });
    expect(await lookup('registry-1.docker.io', { credsStore: store.name })).toStrictEqual({ username: 'hub', password: SECRET });
  });

  it('takes a helper\'s <token> answer as an identity token', async () => {
    const store = await answering('<token>', ['ghcr.io']);
    expect(await lookup('ghcr.io', { credsStore: store.name })).toStrictEqual({ identityToken: SECRET });
  });

  it('fails naming the helper and the registry when the helper fails, without its stdout', async () => {
    const store = await failing();
    const error = await lookup('ghcr.io', { credsStore: store.name }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as Error).message).toBe(`credential helper docker-credential-${store.name} for ghcr.io failed (exit code 1): keychain locked`);
  });

  it('uses the empty credsStore docker writes as no store', async () => {
    expect(await lookup('ghcr.io', { credsStore: '', auths: { 'ghcr.io': { auth: base64('file:f') } } })).toStrictEqual({ username: 'file', password: 'f' });
  });
});

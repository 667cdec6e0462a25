import { describe, expect, it } from 'vitest';
import { pathWith, suiteHelperDir, writeCredentialHelper, type HelperBehaviour } from '../../../test/support/credential-helpers.js';
import { helperLogin, isHelperName } from './credential-helper.js';
import { RegistryError } from './errors.js';

const SECRET = 'S3CRET-from-helper-7f2a';
const REGISTRY = 'registry.example.com:5000';

const dir = suiteHelperDir('helper');
let count = 0;
const env = () => ({ ...process.env, PATH: pathWith(dir()) });

async function helper(behaviour: HelperBehaviour) {
  return writeCredentialHelper(dir(), `test${count++}`, behaviour);
}

async function failure(run: Promise<unknown>): Promise<RegistryError> {
  const error = await run.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(RegistryError);
  expect((error as Error).message).not.toContain(SECRET);
  return error as RegistryError;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('helperLogin', () => {
  it('runs docker-credential-<name> get with the server URL on stdin, and takes its username and secret', async () => {
    const h = await helper({ logins: { [REGISTRY]: { Username: 'robot', Secret: SECRET } } });
    expect(await helperLogin(h.name, REGISTRY, { env: env() })).toStrictEqual({ username: 'robot', password: SECRET });
    expect(await h.calls()).toMatchObject([{ args: ['get'], input: REGISTRY }]);
  });

  it('takes the username <token> as docker does: the secret is an identity token', async () => {
    const h = await helper({ logins: { [REGISTRY]: { Username: '<token>', Secret: SECRET } } });
    expect(await helperLogin(h.name, REGISTRY, { env: env() })).toStrictEqual({ identityToken: SECRET });
  });

  it('answers no login when the helper has none for the server ("credentials not found")', async () => {
    const h = await helper({ logins: { 'other.example.com': { Username: 'robot', Secret: SECRET } } });
    expect(await helperLogin(h.name, REGISTRY, { env: env() })).toBeUndefined();
    expect(await h.calls()).toHaveLength(1);
  });

  it('fails naming the helper, the registry, its exit code and its stderr, never its stdout', async () => {
    const h = await helper({ exit: 3, stdout: `{"Username":"robot","Secret":"${SECRET}"}`, stderr: 'warming up\nno AWS region configured\n' });
    const error = await failure(helperLogin(h.name, REGISTRY, { env: env() }));
    expect(error).toMatchObject({
      code: 'UNAUTHORIZED',
      transient: false,
      message: `credential helper docker-credential-${h.name} for ${REGISTRY} failed (exit code 3): no AWS region configured`,
    });
  });

  it('says only the exit code when the helper says nothing on stderr', async () => {
    const h = await helper({ exit: 1, stdout: `error: ${SECRET}` });
    expect((await failure(helperLogin(h.name, REGISTRY, { env: env() }))).message).toBe(`credential helper docker-credential-${h.name} for ${REGISTRY} failed (exit code 1)`);
  });

  it.each<[string, HelperBehaviour, string, RegExp]>([
    ['not JSON', { exit: 0, stdout: `Username=robot Secret=${SECRET}` }, 'PROTOCOL', /: its answer is not JSON$/],
    ['JSON without a secret', { exit: 0, stdout: JSON.stringify({ Username: 'robot', Password: SECRET }) }, 'PROTOCOL', /: its answer lacks a string "Username" and "Secret"$/],
    ['JSON that is not an object', { exit: 0, stdout: JSON.stringify([SECRET]) }, 'PROTOCOL', /lacks a string "Username" and "Secret"$/],
    ['a username with ":"', { exit: 0, stdout: JSON.stringify({ Username: 'a:b', Secret: SECRET }) }, 'INVALID_CONFIG', /for registry\.example\.com:5000 has a username containing ":"$/],
    ['an empty secret', { exit: 0, stdout: JSON.stringify({ Username: 'robot', Secret: '' }) }, 'INVALID_CONFIG', /has an empty password for user "robot"$/],
    ['an empty identity token', { exit: 0, stdout: JSON.stringify({ Username: '<token>', Secret: '' }) }, 'PROTOCOL', /its identity token is empty$/],
    ['more than 1 MiB', { exit: 0, stdout: `{"Secret":"${SECRET}${'x'.repeat(1024 * 1024)}"}` }, 'PROTOCOL', /it answered more than 1024 KiB$/],
  ])('refuses an answer with %s, without quoting it', async (_, behaviour, code, message) => {
    const h = await helper(behaviour);
    const error = await failure(helperLogin(h.name, REGISTRY, { env: env() }));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(new RegExp(`^credential helper docker-credential-${h.name} for ${REGISTRY.replaceAll('.', '\\.')}`));
    expect(error.message).toMatch(message);
  });

  it('fails with INVALID_CONFIG when the helper is not on PATH', async () => {
    const error = await failure(helperLogin('ferry-no-such-helper', REGISTRY, { env: env() }));
    expect(error).toMatchObject({ code: 'INVALID_CONFIG', message: `credential helper docker-credential-ferry-no-such-helper for ${REGISTRY}: docker-credential-ferry-no-such-helper is not on PATH` });
  });

  it('stops a helper that does not answer in time, and says so', async () => {
    const h = await helper({ hang: true });
    const started = Date.now();
    const error = await failure(helperLogin(h.name, REGISTRY, { env: env(), timeoutMs: 1_000 }));
    expect(error).toMatchObject({ code: 'TIMEOUT', transient: true, message: `credential helper docker-credential-${h.name} for ${REGISTRY}: no answer within 1 s; stopped it` });
    expect(Date.now() - started).toBeLessThan(10_000);
    const [call] = await h.calls();
    expect(call).toBeDefined();
    expect(alive(call!.pid)).toBe(false);
  });

  it('runs no program for a name that is not a helper name', async () => {
    const error = await failure(helperLogin('../../bin/sh', REGISTRY, { env: env() }));
    expect(error).toMatchObject({ code: 'INVALID_CONFIG', message: '"../../bin/sh" is not a credential helper name (the part after docker-credential-, as in ecr-login)' });
  });
});

describe('isHelperName', () => {
  it.each(['ecr-login', 'gcr', 'osxkeychain', 'acr-env', 'desktop.exe', 'a_b', 'x'.repeat(100)])('takes %j', (name) => {
    expect(isHelperName(name)).toBe(true);
  });

  it.each(['', '-x', '.hidden', 'a/b', '../x', 'a b', 'a;b', 'x'.repeat(101), 'ecr\nlogin'])('refuses %j', (name) => {
    expect(isHelperName(name)).toBe(false);
  });
});

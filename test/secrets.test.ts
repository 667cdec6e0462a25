import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/services/store/open.js';
import { Keyring, loadKeyring } from '../src/services/store/secrets.js';
import { ferry } from './support/ferry.js';

const PASSWORD = 'rotate-me-S3CRET';

let dir: string;
let database: string;
let keyFile: string;
let registryId: string;

/** The password as a store opened with `keyring` reads it. */
async function passwordWith(keyring: Keyring): Promise<string | undefined> {
  const store = await openStore(database, () => {}, keyring);
  try {
    return (await store.registries.credentials(registryId))?.password;
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-secrets-'));
  database = join(dir, 'ferry.db');
  keyFile = join(dir, 'ferry.key');
  const store = await openStore(database, () => {}, await loadKeyring({ env: {}, file: keyFile }));
  registryId = (await store.registries.create({ name: 'private', url: 'private.example.com', credentials: { username: 'robot', password: PASSWORD } })).id;
  await store.close();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ferry secrets rotate', () => {
  it('seals the passwords with a new key, which replaces the old one in the key file (mode 0600)', async () => {
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const before = await readFile(keyFile, 'utf8');
    const rotated = await ferry(['secrets', 'rotate', '--db', database], { FERRY_SECRET_KEY: '' });
    expect(rotated.code, rotated.stderr).toBe(0);
    const after = await readFile(keyFile, 'utf8');
    expect(after.trim().split('\n')).toHaveLength(1);
    expect(after).not.toBe(before);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const current = await loadKeyring({ env: {}, file: keyFile });
    expect(rotated.stdout).toContain(`every registry password is sealed with key ${current.id}`);
    expect(await passwordWith(current)).toBe(PASSWORD);
    await expect(passwordWith(await loadKeyring({ env: { FERRY_SECRET_KEY: before }, file: keyFile }))).rejects.toThrow(/^the password of registry private was sealed with secret key/);
  });

  it('refuses to serve with a key that opens no stored password, naming the registry and never the password', async () => {
    const served = await ferry(['serve', '--db', database, '--port', '1'], { FERRY_SECRET_KEY: randomBytes(32).toString('base64') });
    expect(served.code).toBe(1);
    expect(served.stderr).toMatch(/ferry: the password of registry private was sealed with secret key [0-9a-f]{12}, which is not among the keys given/);
    expect(served.stderr + served.stdout).not.toContain(PASSWORD);
  });

  it('refuses to serve with a key other than the database\'s, before any password is stored (nodes must share one key)', async () => {
    const fresh = join(dir, 'fresh.db');
    const first = new Keyring([randomBytes(32)]);
    await (await openStore(fresh, () => {}, first)).close();
    const served = await ferry(['serve', '--db', fresh, '--port', '1'], { FERRY_SECRET_KEY: randomBytes(32).toString('base64') });
    expect(served.code).toBe(1);
    expect(served.stderr).toMatch(new RegExp(`^ferry: this database's key check \\(the secret key every node of the database must share\\) was sealed with secret key ${first.id}, which is not among the keys given`));
  });

  it('refuses a key that is not 32 bytes of base64, and an unknown action', async () => {
    const short = await ferry(['secrets', 'rotate', '--db', database], { FERRY_SECRET_KEY: 'c2hvcnQ=' });
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('FERRY_SECRET_KEY: key 1 is not 32 bytes in base64');
    const unknown = await ferry(['secrets', 'show', '--db', database]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("ferry: unknown command 'show' (see ferry secrets --help)");
  });
});

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Secrets at rest: AES-256-GCM under a key that never enters the database. A sealed value
 * names the key that sealed it, so a keyring of the new key and the old ones reads every row
 * while they are sealed again under the new one (rotation).
 */

const SCHEME = 'aes256gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;

export class SecretKeyError extends Error {
  override readonly name = 'SecretKeyError';
}

/** The first 12 hex digits of the key's SHA-256: names it in rows and messages without giving it away. */
function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

export class Keyring {
  readonly #keys: Map<string, Buffer>;
  /** The key that seals. */
  readonly id: string;

  /** The first key seals; every key opens what it sealed. */
  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new SecretKeyError('a keyring needs a key');
    this.#keys = new Map(keys.map((key) => [keyId(key), key]));
    this.id = keyId(keys[0]!);
  }

  /** A key of its own: what it seals is readable by this keyring only. */
  static generate(): Keyring {
    return new Keyring([randomBytes(KEY_BYTES)]);
  }

  /** `context` (the row's id) is authenticated with it: a sealed value moved to another row does not open. */
  seal(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.id)!, iv).setAAD(Buffer.from(context));
    const sealed = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [SCHEME, this.id, iv.toString('base64'), cipher.getAuthTag().toString('base64'), sealed.toString('base64')].join(':');
  }

  /** `what` names the secret in errors, which never hold it. */
  open(value: string, context: string, what: string): string {
    const [scheme, id, iv, tag, sealed] = value.split(':');
    if (scheme !== SCHEME || !id || iv === undefined || tag === undefined || sealed === undefined) throw new SecretKeyError(`${what} is not sealed`);
    const key = this.#keys.get(id);
    if (!key) throw new SecretKeyError(`${what} was sealed with secret key ${id}, which is not among the keys given (${[...this.#keys.keys()].join(', ')}): set FERRY_SECRET_KEY or --secret-key-file to that key`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64')).setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(sealed, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretKeyError(`${what} does not decrypt with secret key ${id}: the stored value was altered`);
    }
  }

  /** Whether the value is sealed with the key that seals now (else it is plain text, or under an older key). */
  sealedNow(value: string): boolean {
    return value.startsWith(`${SCHEME}:${this.id}:`);
  }

  /** Whether the value is sealed at all (plain text from before ferry sealed passwords is not). */
  static isSealed(value: string): boolean {
    return value.startsWith(`${SCHEME}:`);
  }
}

/** Base64 keys of 32 bytes, one per line or comma, the sealing key first. */
function parseKeys(text: string, source: string): Buffer[] {
  const keys = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((encoded, index) => {
      const key = Buffer.from(encoded, 'base64');
      if (key.length !== KEY_BYTES) throw new SecretKeyError(`${source}: key ${index + 1} is not ${KEY_BYTES} bytes in base64 (openssl rand -base64 32 makes one)`);
      return key;
    });
  if (keys.length === 0) throw new SecretKeyError(`${source} holds no key`);
  return keys;
}

/** Where the key file is unless one is given: next to a SQLite file, or under ./data for PostgreSQL. */
export function defaultKeyFile(database: string, postgres: boolean): string {
  return join(postgres ? 'data' : dirname(database), 'ferry.key');
}

/** Writes the keys through a temporary file: a reader sees the old file or the new one, never half of one. */
async function writeKeyFile(path: string, keys: readonly Buffer[], replace: boolean): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(temporary, `${keys.map((key) => key.toString('base64')).join('\n')}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(temporary, 0o600);
  try {
    // link refuses an existing file: of nodes starting together, one creates the key and the others read it.
    if (replace) await rename(temporary, path);
    else await link(temporary, path);
  } finally {
    await rm(temporary, { force: true });
  }
}

/**
 * The keyring from FERRY_SECRET_KEY, or else from the key file, which is created with a new
 * key (mode 0600) when missing.
 */
export async function loadKeyring({ env, file }: { env: Record<string, string | undefined>; file: string }): Promise<Keyring> {
  if (env.FERRY_SECRET_KEY) return new Keyring(parseKeys(env.FERRY_SECRET_KEY, 'FERRY_SECRET_KEY'));
  try {
    return new Keyring(parseKeys(await readFile(file, 'utf8'), file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dirname(file), { recursive: true });
  await writeKeyFile(file, [randomBytes(KEY_BYTES)], false).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  return new Keyring(parseKeys(await readFile(file, 'utf8'), file));
}

/**
 * Rotation, first step: a new key goes first in the key file, the old ones stay after it so
 * that what they sealed still opens. Returns the keyring to seal again with.
 */
export async function prependKey(file: string): Promise<Keyring> {
  const keys = [randomBytes(KEY_BYTES), ...parseKeys(await readFile(file, 'utf8'), file)];
  await writeKeyFile(file, keys, true);
  return new Keyring(keys);
}

/** Rotation, last step, once nothing is sealed with the old keys: the key file keeps the new one only. */
export async function dropOldKeys(file: string): Promise<void> {
  await writeKeyFile(file, parseKeys(await readFile(file, 'utf8'), file).slice(0, 1), true);
}

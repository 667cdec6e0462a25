import { readFile } from 'node:fs/promises';
import { isPostgresUrl, openStore } from '../services/store/open.js';
import { defaultKeyFile, dropOldKeys, loadKeyring, prependKey } from '../services/store/secrets.js';
import type { CommandIO } from './io.js';
import { UsageError } from './usage.js';

/** The key file of a store: the one given, or the default for its location. */
export function keyFile(database: string, given: string | undefined): string {
  return given ?? defaultKeyFile(database, isPostgresUrl(database));
}

/** The API token from --token, --token-file (which keeps it out of ps) or FERRY_API_TOKEN. */
export async function apiToken(values: { token?: string | undefined; tokenFile?: string | undefined }, env: CommandIO['env']): Promise<string | undefined> {
  if (values.token !== undefined && values.tokenFile !== undefined) throw new UsageError('give --token or --token-file, not both');
  if (values.tokenFile === undefined) return values.token ?? env.FERRY_API_TOKEN;
  const token = (await readFile(values.tokenFile, 'utf8')).trim();
  if (token === '') throw new UsageError(`--token-file ${values.tokenFile} is empty`);
  return token;
}

/** `ferry secrets rotate`: every registry password sealed again with a new key. */
export async function rotateSecrets(values: { db?: string; secretKeyFile?: string }, io: CommandIO): Promise<number> {
  const database = values.db ?? io.env.FERRY_DATABASE_URL ?? 'data/ferry.db';
  const file = keyFile(database, values.secretKeyFile);
  const fromEnv = Boolean(io.env.FERRY_SECRET_KEY);
  const keyring = fromEnv ? await loadKeyring({ env: io.env, file }) : await prependKey(file);
  // Opening the store seals again whatever an older key of the keyring sealed.
  const store = await openStore(database, (message) => io.stderr.write(`${message}\n`), keyring);
  await store.close();
  if (!fromEnv) await dropOldKeys(file);
  io.stdout.write(`every registry password is sealed with key ${keyring.id}${fromEnv ? '' : ` (${file})`}; restart each ferry serve on this database\n`);
  return 0;
}

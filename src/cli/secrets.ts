import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { isPostgresUrl, openStore } from '../services/store/open.js';
import { defaultKeyFile, dropOldKeys, loadKeyring, prependKey } from '../services/store/secrets.js';
import type { CommandIO } from './io.js';
import { UsageError } from './usage.js';

export const SECRETS_USAGE = `Usage: ferry secrets rotate [options]

Seals every registry password in the store again, with a new key: the key file gets a new
key, every password is sealed with it, then the old key is dropped from the file.
With FERRY_SECRET_KEY set, that gives the keys instead: set it to NEW,OLD, run this, then
keep NEW only. Restart every ferry serve on the database afterwards: they read the key at start.

Options:
  --db PATH|URL             the store (default ./data/ferry.db, or FERRY_DATABASE_URL)
  --secret-key-file FILE    the key file (default ferry.key next to the SQLite file,
                            or data/ferry.key for PostgreSQL)`;

/** The key file of a store: the one given, or the default for its location. */
export function keyFile(database: string, given: string | undefined): string {
  return given ?? defaultKeyFile(database, isPostgresUrl(database));
}

/** The API token from --token, --token-file (which keeps it out of ps) or FERRY_API_TOKEN. */
export async function apiToken(values: { token?: string | undefined; 'token-file'?: string | undefined }, env: CommandIO['env']): Promise<string | undefined> {
  if (values.token !== undefined && values['token-file'] !== undefined) throw new UsageError('give --token or --token-file, not both');
  if (values['token-file'] === undefined) return values.token ?? env.FERRY_API_TOKEN;
  const token = (await readFile(values['token-file'], 'utf8')).trim();
  if (token === '') throw new UsageError(`--token-file ${values['token-file']} is empty`);
  return token;
}

export async function secretsCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { db: { type: 'string' }, 'secret-key-file': { type: 'string' } } });
  if (positionals.length !== 1 || positionals[0] !== 'rotate') throw new UsageError(`secrets takes one action, rotate${positionals[0] ? `, not "${positionals.join(' ')}"` : ''}`);
  const database = values.db ?? io.env.FERRY_DATABASE_URL ?? 'data/ferry.db';
  const file = keyFile(database, values['secret-key-file']);
  const fromEnv = Boolean(io.env.FERRY_SECRET_KEY);
  const keyring = fromEnv ? await loadKeyring({ env: io.env, file }) : await prependKey(file);
  // Opening the store seals again whatever an older key of the keyring sealed.
  const store = await openStore(database, (message) => io.stderr.write(`${message}\n`), keyring);
  await store.close();
  if (!fromEnv) await dropOldKeys(file);
  io.stdout.write(`every registry password is sealed with key ${keyring.id}${fromEnv ? '' : ` (${file})`}; restart each ferry serve on this database\n`);
  return 0;
}

import { openPostgresStore } from './postgres/connect.js';
import { defaultKeyFile, Keyring, loadKeyring } from './secrets.js';
import { openSqliteStore } from './sqlite/connect.js';
import type { Store } from './types.js';

/** `postgres://…` (or `postgresql://…`) opens PostgreSQL; anything else is a SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location);
}

/**
 * Opens the store with the keyring that seals its passwords (by default FERRY_SECRET_KEY or
 * the default key file), and seals the passwords stored in plain text or under an older key.
 */
export async function openStore(location: string, log: (message: string, error: unknown) => void, keyring?: Keyring): Promise<Store> {
  const postgres = isPostgresUrl(location);
  // A database in memory goes with the process: so may its key, and no key file is left behind.
  const keys = keyring ?? (location === ':memory:' ? Keyring.generate() : await loadKeyring({ env: process.env, file: defaultKeyFile(location, postgres) }));
  const store = postgres ? await openPostgresStore(location, log, keys) : openSqliteStore(location, keys);
  try {
    await store.registries.reseal();
    return store;
  } catch (error) {
    await store.close();
    throw error;
  }
}

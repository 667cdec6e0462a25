import { openPostgresStore } from './postgres/connect.js';
import { openSqliteStore } from './sqlite/connect.js';
import type { Store } from './types.js';

/** `postgres://…` (or `postgresql://…`) opens PostgreSQL; anything else is a SQLite file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location);
}

export async function openStore(location: string, log: (message: string, error: unknown) => void): Promise<Store> {
  return isPostgresUrl(location) ? openPostgresStore(location, log) : openSqliteStore(location);
}

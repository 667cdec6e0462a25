import { sql, type RawBuilder } from 'kysely';
import type { Engine } from '../types.js';

/**
 * What the shared queries need to know of the engine under them. Lease times are always the
 * database's clock, never a node's: nodes whose clocks disagree still agree on who holds what.
 */
export interface SqlDialect {
  engine: Engine;
  /** The database's current time. */
  now(): RawBuilder<string>;
  /** The database's current time plus `ms`. */
  later(ms: number): RawBuilder<string>;
  /**
   * Whether a claim locks the rows it reads and skips those others lock (PostgreSQL's
   * `FOR UPDATE SKIP LOCKED`). SQLite has no row locks: its write transactions take the whole
   * file (`BEGIN IMMEDIATE`), so two claims never read the same queue at once.
   */
  rowLocks: boolean;
  /**
   * Whether a transaction locks the feed of changes before adding to it, so that changes are
   * numbered in the order they are committed (see recordChanges in history.ts). SQLite's write
   * transactions already run one at a time.
   */
  lockFeed: boolean;
}

/** ISO 8601 in UTC with milliseconds, as `Date.toISOString()` writes it, so stored times compare as text. */
const SQLITE_ISO = '%Y-%m-%dT%H:%M:%fZ';

export const sqliteDialect: SqlDialect = {
  engine: 'sqlite',
  now: () => sql<string>`strftime(${SQLITE_ISO}, 'now')`,
  later: (ms) => sql<string>`strftime(${SQLITE_ISO}, 'now', ${`${ms / 1000} seconds`})`,
  rowLocks: false,
  lockFeed: false,
};

export const postgresDialect: SqlDialect = {
  engine: 'postgres',
  now: () => sql<string>`now()`,
  later: (ms) => sql<string>`now() + make_interval(secs => ${ms / 1000})`,
  rowLocks: true,
  lockFeed: true,
};

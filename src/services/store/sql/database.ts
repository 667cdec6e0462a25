import type { Kysely, SelectQueryBuilder, Transaction } from 'kysely';
import type { Page } from '../types.js';
import { ConflictError } from '../errors.js';
import type { SqlDialect } from './dialect.js';
import type { Tables } from './schema.js';

/** A connection to either engine, with what its queries need to know of it. */
export interface Database {
  db: Kysely<Tables>;
  dialect: SqlDialect;
  /** After a committed write that added to the feed of job changes: tells every node to read it. */
  changed(): Promise<void>;
}

/**
 * Tells every node that the feed has new changes, without waiting. The write stands even when
 * the signal cannot be sent (the database going away; the engine logs it): each node reads every
 * change after the last it passed on, at the next signal or once its signal connection is back.
 */
export function announce(database: Database): void {
  void database.changed().catch(() => {});
}

export type Executor = Kysely<Tables> | Transaction<Tables>;

/**
 * Runs `work` in one write transaction. On SQLite the driver's transactions begin IMMEDIATE
 * (see sqlite/connect.ts); on PostgreSQL they run at READ COMMITTED, with row locks where
 * two nodes could race.
 */
export function write<T>(database: Database, work: (trx: Transaction<Tables>) => Promise<T>): Promise<T> {
  return database.db.transaction().execute(work);
}

/** SQLite's and PostgreSQL's ways of saying a unique index refused a row. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * A unique index refused what a racing writer (another node) stored first: the same conflict
 * the checks before it report, said without knowing which field.
 */
export async function unique<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`${what} is already taken`);
    throw error;
  }
}

/**
 * Rows per INSERT of many rows: a statement binds at most 32766 values on SQLite and 65535 on
 * PostgreSQL, and a job's row has 18.
 */
const ROWS_PER_INSERT = 500;

/** `rows` in runs short enough for one INSERT each. */
export function* batches<T>(rows: readonly T[]): Generator<T[]> {
  for (let start = 0; start < rows.length; start += ROWS_PER_INSERT) yield rows.slice(start, start + ROWS_PER_INSERT);
}

/** The rows a listing's query selects, before paging. */
export async function count<TB extends keyof Tables>(query: SelectQueryBuilder<Tables, TB, object>): Promise<number> {
  const { total } = await query.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  return Number(total);
}

/**
 * A page of a listing, all of it when no limit is given. SQLite has no OFFSET without a LIMIT,
 * so an offset alone comes with the largest limit both engines take.
 */
export function paged<Query extends { limit(limit: number): Query; offset(offset: number): Query }>(query: Query, page: Page): Query {
  const limited = page.limit !== undefined || page.offset !== undefined ? query.limit(page.limit ?? Number.MAX_SAFE_INTEGER) : query;
  return page.offset !== undefined ? limited.offset(page.offset) : limited;
}

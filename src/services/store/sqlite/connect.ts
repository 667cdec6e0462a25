import { closeSync, mkdirSync, openSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';
import { sqliteDialect } from '../sql/dialect.js';
import type { Tables } from '../sql/schema.js';
import { Keyring } from '../secrets.js';
import { sqlStore } from '../sql/store.js';
import { localSignals } from '../signals.js';
import type { Store } from '../types.js';
import { migrate } from './migrations.js';

const BUSY_TIMEOUT_MS = 5_000;
const MAX_PREPARED = 500;

/** A connection to one file, and the stores of this process that use it. */
interface OpenFile {
  db: Kysely<Tables>;
  signals: ReturnType<typeof localSignals>;
  stores: number;
}

/**
 * The files this process has open, by real path. better-sqlite3 waits for a busy file
 * synchronously: a second connection to a file in the same process would block the event loop
 * while the first one's transaction, which awaits between its statements, never gets to finish
 * ("database is locked" after BUSY_TIMEOUT_MS). So stores opened on one file in one process
 * share its connection (Kysely runs its queries one at a time) and its signals.
 */
const openFiles = new Map<string, OpenFile>();

/**
 * The store on one SQLite file (or `:memory:`): ferry's embedded default, for one node. Its
 * write transactions take the file at once (BEGIN IMMEDIATE) and a busy file is waited for,
 * so processes sharing it never see each other's half-done claims.
 */
export function openSqliteStore(path: string, keyring = Keyring.generate()): Store {
  const key = path === ':memory:' ? undefined : createPrivateFile(path);
  const file = (key === undefined ? undefined : openFiles.get(key)) ?? openFile(path, key);
  file.stores += 1;
  const { db, signals } = file;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    file.stores -= 1;
    if (file.stores > 0) return;
    if (key !== undefined) openFiles.delete(key);
    await db.destroy();
  };
  return sqlStore({ db, dialect: sqliteDialect, changed: async () => signals.emit({ type: 'changed' }) }, { location: path, signals, close }, keyring);
}

function openFile(path: string, key: string | undefined): OpenFile {
  const file: OpenFile = { db: new Kysely<Tables>({ dialect: new SqliteDialect({ database: forKysely(connect(path)) }) }), signals: localSignals(), stores: 0 };
  if (key !== undefined) openFiles.set(key, file);
  return file;
}

function connect(path: string): Database.Database {
  const db = new Database(path);
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * The file holds registry passwords: only its owner may read it (SQLite gives -wal and -shm the
 * same mode). Returns its real path.
 */
function createPrivateFile(path: string): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  return realpathSync(path);
}

/**
 * better-sqlite3 as Kysely drives it, with three differences: each SQL text is prepared once;
 * booleans are bound as 0/1 (SQLite has no boolean and better-sqlite3 refuses them); and
 * Kysely's `begin` becomes `BEGIN IMMEDIATE`, since every transaction ferry opens writes, and a
 * deferred one that upgrades to writing fails with SQLITE_BUSY instead of waiting.
 */
function forKysely(db: Database.Database): SqliteDatabase {
  const prepared = new Map<string, Database.Statement>();
  const bind = (parameters: ReadonlyArray<unknown>) => parameters.map((value) => (typeof value === 'boolean' ? Number(value) : value));
  return {
    close: () => db.close(),
    prepare(source: string): SqliteStatement {
      const text = source.trim().toLowerCase() === 'begin' ? 'BEGIN IMMEDIATE' : source;
      let statement = prepared.get(text);
      if (statement === undefined) {
        // Inserts of N rows are N texts: keep the cache bounded.
        if (prepared.size >= MAX_PREPARED) prepared.clear();
        prepared.set(text, (statement = db.prepare(text)));
      }
      const ready = statement;
      return {
        reader: ready.reader,
        all: (parameters) => ready.all(...bind(parameters)),
        run: (parameters) => ready.run(...bind(parameters)),
        iterate: (parameters) => ready.iterate(...bind(parameters)),
      };
    },
  };
}

import { Kysely, PostgresDialect } from 'kysely';
import { coalesced } from '../../coalesced.js';
import pg from 'pg';
import { postgresDialect } from '../sql/dialect.js';
import type { Tables } from '../sql/schema.js';
import { Keyring } from '../secrets.js';
import { sqlStore } from '../sql/store.js';
import type { Store } from '../types.js';
import { migrate } from './migrations.js';
import { postgresSignals } from './signals.js';

const POOL_SIZE = 10;
/**
 * How long PostgreSQL lets a transaction wait for its node's next statement before it ends the
 * session. Ferry's transactions take milliseconds. A node frozen in the middle of one (stopped,
 * swapped out, its VM paused) would otherwise keep the job rows it locked for as long as it is
 * frozen: claims skip locked rows, so no other node could take those jobs over when their
 * leases run out. Short against a lease (15 s by default).
 */
const IDLE_IN_TRANSACTION_MS = 2_000;

/**
 * Values come back as the shared queries expect them on either engine (sql/schema.ts):
 * timestamps as ISO strings, JSON as its text, counts as numbers.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    switch (oid) {
      case pg.types.builtins.TIMESTAMPTZ:
        return (text: string) => new Date(text).toISOString();
      case pg.types.builtins.JSON:
      case pg.types.builtins.JSONB:
        return (text: string) => text;
      case pg.types.builtins.INT8:
        return (text: string) => Number(text);
      default:
        return pg.types.getTypeParser(oid, format);
    }
  },
} as pg.CustomTypesConfig;

/** `postgres://user:pass@host/db` without its password, for logs. */
export function redactedUrl(url: string): string {
  const shown = new URL(url);
  if (shown.password) shown.password = '***';
  return shown.href;
}

/**
 * The store on PostgreSQL, for several nodes on one database. Migrates at start-up (once, under
 * an advisory lock, however many nodes start together).
 */
export async function openPostgresStore(url: string, log: (message: string, error: unknown) => void, keyring = Keyring.generate()): Promise<Store> {
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, types, connectionTimeoutMillis: 10_000, idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS });
  // An idle client whose server went away emits 'error'; unhandled, it would end the process.
  // The next query on the pool connects afresh, or fails and is retried by its caller.
  pool.on('error', (error) => log('an idle PostgreSQL connection failed', error));
  // A connection in use (a query or a transaction under way) emits 'error' too when the server
  // goes away, and the pool listens only to idle ones: unheard, it would end the process. What
  // was under way on it fails with that error, and the pool drops the connection when it is released.
  pool.on('connect', (client) => client.on('error', () => {}));
  const signals = await start(url, pool, log).catch(async (error: unknown) => {
    await pool.end();
    throw error;
  });
  const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  return sqlStore(
    {
      db,
      dialect: postgresDialect,
      // The change is committed whatever happens to NOTIFY; left unhandled, its failure (a dropped connection) would end the process.
      changed: coalesced(() => signals.publish({ type: 'changed' }).catch((error: unknown) => log('telling the other nodes of a change failed', error))),
    },
    {
      location: redactedUrl(url),
      signals,
      close: async () => {
        await signals.close();
        await db.destroy();
        // Kysely ends the pool only once it has run a query on it; migrating used it before that.
        if (!pool.ending) await pool.end();
      },
    },
    keyring,
  );
}

/** Migrates, then listens for signals. */
async function start(url: string, pool: pg.Pool, log: (message: string, error: unknown) => void): Promise<ReturnType<typeof postgresSignals>> {
  const client = await pool.connect();
  try {
    await migrate(client);
  } finally {
    client.release();
  }
  const signals = postgresSignals(url, pool, log);
  try {
    await signals.ready;
  } catch (error) {
    await signals.close();
    throw error;
  }
  return signals;
}

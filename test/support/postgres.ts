import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import pg from 'pg';

/** A role that may create databases; scripts/install-test-deps.sh makes `ferry`/`ferry` on the local cluster. */
export const POSTGRES_ADMIN_URL =
  process.env.FERRY_TEST_POSTGRES_URL ?? 'postgres://ferry:ferry@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  /** Drops the database, ending any connection still open to it. */
  drop(): Promise<void>;
}

const execFileAsync = promisify(execFile);

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  // A server that restarts under an idle client emits 'error'; the query in flight rejects anyway.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    const shown = new URL(url);
    if (shown.password) shown.password = '***';
    throw new Error(
      `PostgreSQL is not reachable at ${shown.href} (${(error as Error).message}). ` +
        'Run `bash scripts/install-test-deps.sh` to install and start it with the role the tests use, ' +
        'or set FERRY_TEST_POSTGRES_URL to a server where a role may create databases.',
      { cause: error },
    );
  }
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** A fresh, uniquely named database `ferry_test_<label>_<random>`; `adminUrl` is for the test of the error. */
export async function createTestDatabase(label: string, adminUrl = POSTGRES_ADMIN_URL): Promise<TestDatabase> {
  const sanitized = label.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '').slice(0, 30);
  const name = `ferry_test_${sanitized}_${randomBytes(4).toString('hex')}`;
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    name,
    drop: async () => {
      await withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

/** The newest cluster Debian's postgresql-common knows (`/etc/postgresql/<version>/main`). */
function clusterVersion(): string {
  const versions = readdirSync('/etc/postgresql').filter((entry) => /^\d+$/.test(entry));
  const newest = versions.sort((a, b) => Number(a) - Number(b)).at(-1);
  if (!newest) throw new Error('no PostgreSQL cluster in /etc/postgresql: run `bash scripts/install-test-deps.sh`');
  return newest;
}

/** Runs `pg_ctlcluster` on the local cluster; it fails when the cluster is already in that state. */
async function pgCtlCluster(action: 'start' | 'stop' | 'restart'): Promise<void> {
  await execFileAsync('pg_ctlcluster', ['--skip-systemctl-redirect', clusterVersion(), 'main', action]);
}

export const startPostgres = (): Promise<void> => pgCtlCluster('start');
export const stopPostgres = (): Promise<void> => pgCtlCluster('stop');
export const restartPostgres = (): Promise<void> => pgCtlCluster('restart');

import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { atExit } from './cleanup.js';
import { freePort } from './registry.js';

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

/** A PostgreSQL server of one test's own: restarting it disturbs no other test file. */
export interface PrivatePostgres {
  /** The superuser's URL (trust auth on 127.0.0.1), for createTestDatabase. */
  adminUrl: string;
  port: number;
  /** The server's log, for failure messages. */
  log(): Promise<string>;
  /** Ends every connection (fast shutdown) and starts again on the same port and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its data. */
  remove(): Promise<void>;
}

/** Data directories of the servers running, by the temporary directory that holds each. */
const privateServers = new Map<string, string>();

/** The newest server binaries installed (`/usr/lib/postgresql/<version>/bin`). */
function serverBin(): string {
  const versions = readdirSync('/usr/lib/postgresql').filter((entry) => /^\d+$/.test(entry));
  const newest = versions.sort((a, b) => Number(a) - Number(b)).at(-1);
  if (!newest) throw new Error('no PostgreSQL server in /usr/lib/postgresql: run `bash scripts/install-test-deps.sh`');
  return `/usr/lib/postgresql/${newest}/bin`;
}

/** Runs a server binary, as the `postgres` OS user when this is root; its output on failure. */
async function asPostgres(command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(...asPostgresArgs(command, args), { timeout: 60_000 });
    return stdout;
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr || stdout || (error as Error).message}`, { cause: error });
  }
}

/** `command` of the server binaries, as the `postgres` OS user when this is root (initdb refuses root). */
function asPostgresArgs(command: string, args: string[]): [string, string[]] {
  const path = `${serverBin()}/${command}`;
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

/** Servers are stopped at once when the test process ends, so none outlives a failed run. */
function removePrivateServers(): void {
  for (const [dir, data] of privateServers) {
    try {
      execFileSync(...asPostgresArgs('pg_ctl', ['stop', '-D', data, '-m', 'immediate']), { stdio: 'ignore' });
    } catch {
      // already stopped
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * initdb into a temporary directory and pg_ctl start on a free port of 127.0.0.1, as the
 * `postgres` OS user when the tests run as root. Durability is off: the data is thrown away.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  atExit(removePrivateServers);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-postgres-'));
  if (process.getuid?.() === 0) {
    const uid = Number((await execFileAsync('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await execFileAsync('id', ['-g', 'postgres'])).stdout.trim());
    await chown(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const port = await freePort();
  const options = [
    `-p ${port}`, '-c listen_addresses=127.0.0.1', `-c unix_socket_directories=${dir}`,
    '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off', '-c max_connections=200',
  ].join(' ');
  const pgCtl = (action: string, ...extra: string[]) => asPostgres('pg_ctl', [action, '-D', data, '-w', '-t', '60', ...extra]);
  const start = async () => {
    await pgCtl('start', '-l', logFile, '-o', options);
  };
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  privateServers.set(dir, data);
  try {
    await start();
  } catch (error) {
    privateServers.delete(dir);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const stop = async () => {
    await pgCtl('stop', '-m', 'fast');
  };
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    restart: async () => {
      await pgCtl('restart', '-m', 'fast', '-l', logFile, '-o', options);
    },
    stop,
    start,
    remove: async () => {
      await asPostgres('pg_ctl', ['stop', '-D', data, '-m', 'immediate']).catch(() => {});
      privateServers.delete(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

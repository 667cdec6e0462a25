import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import bcrypt from 'bcryptjs';
import { Agent, request } from 'undici';
import { atExit } from './cleanup.js';
import { startTokenServer } from './token-server.js';
import type { TokenServer } from './token-server.js';

export interface RegistryUser {
  username: string;
  password: string;
}

export interface RunningRegistry {
  host: string;
  url: string;
  dataDir: string;
  /** The registry's process, for benchmarks that read its CPU time. */
  pid: number;
  user?: RegistryUser;
  /** Requests the token server has answered so far; only with `auth: 'token'`. */
  tokenRequests?: number;
  /** The OAuth2 refresh-token POSTs the token server had; only with `auth: 'token'`. */
  tokenRefreshes?: Array<Record<string, string>>;
  /** The self-signed certificate (PEM file) the registry serves; only with `tls: true`. */
  caFile?: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  user?: RegistryUser;
  /** With `auth: 'token'`: the identity token its token server takes for `user`. */
  refreshToken?: string;
  notifyUrl?: string;
  /** Sent as `Authorization: Bearer <token>` with each notification. */
  notifyToken?: string;
  /** Serve HTTPS with a fresh self-signed certificate for 127.0.0.1. */
  tls?: boolean;
}

export const DEFAULT_USER: RegistryUser = { username: 'ferry', password: 's3cret-pass' };

const TOKEN_SERVICE = 'ferry-registry';
const TOKEN_ISSUER = 'ferry-test-token-issuer';
const READY_TIMEOUT_MS = 15_000;
const OUTPUT_TAIL_BYTES = 16 * 1024;

const execFileAsync = promisify(execFile);
/** Readiness only: the self-signed certificate is what the tests themselves check. */
const trustingAgent = new Agent({ connect: { rejectUnauthorized: false } });

const liveProcesses = new Set<ChildProcess>();
const liveDirs = new Set<string>();

/** Last-resort cleanup for registries a test never stopped. */
function cleanup(): void {
  for (const child of liveProcesses) child.kill('SIGKILL');
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function authConfig(
  mode: 'htpasswd' | 'token',
  dir: string,
  user: RegistryUser,
  refreshToken: string | undefined,
): Promise<{ auth: object; tokenServer?: TokenServer }> {
  switch (mode) {
    case 'htpasswd': {
      const path = join(dir, 'htpasswd');
      await writeFile(path, `${user.username}:${bcrypt.hashSync(user.password, 5)}\n`);
      return { auth: { htpasswd: { realm: 'ferry-test', path } } };
    }
    case 'token': {
      const tokenServer = await startTokenServer({ dir, user, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, ...(refreshToken === undefined ? {} : { refreshToken }) });
      const token = {
        realm: tokenServer.realm,
        service: TOKEN_SERVICE,
        issuer: TOKEN_ISSUER,
        rootcertbundle: tokenServer.certPath,
      };
      return { auth: { token }, tokenServer };
    }
  }
}

interface Tls {
  certificate: string;
  key: string;
}

async function selfSignedCertificate(dir: string): Promise<Tls> {
  const tls = { certificate: join(dir, 'tls-cert.pem'), key: join(dir, 'tls-key.pem') };
  await execFileAsync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', tls.key, '-out', tls.certificate,
  ]);
  return tls;
}

interface Notify {
  url: string;
  token?: string | undefined;
}

function registryConfig(port: number, dataDir: string, auth: object | undefined, notify: Notify | undefined, tls: Tls | undefined): object {
  return {
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: dataDir },
      delete: { enabled: true },
      cache: { blobdescriptor: 'inmemory' },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex'), ...(tls && { tls }) },
    health: { storagedriver: { enabled: false } },
    ...(auth && { auth }),
    ...(notify && {
      notifications: {
        endpoints: [{
          name: 'ferry', url: notify.url, timeout: '1s', threshold: 1, backoff: '1s',
          ...(notify.token && { headers: { Authorization: [`Bearer ${notify.token}`] } }),
        }],
      },
    }),
  };
}

function registryEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')));
}

function exitReason(child: ChildProcess): string | undefined {
  if (child.exitCode !== null) return `exit code ${child.exitCode}`;
  if (child.signalCode !== null) return `signal ${child.signalCode}`;
  return undefined;
}

async function waitUntilReady(url: string, failure: () => string | undefined, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const reason = failure();
    if (reason) throw new Error(`docker-registry failed before becoming ready (${reason}):\n${output()}`);
    try {
      const response = await request(`${url}/v2/`, { dispatcher: trustingAgent, signal: AbortSignal.timeout(1_000) });
      await response.body.dump();
      if (response.statusCode === 200 || response.statusCode === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`docker-registry at ${url} not ready after ${READY_TIMEOUT_MS} ms:\n${output()}`);
}

function killAndWait(child: ChildProcess): Promise<void> {
  if (exitReason(child)) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  atExit(cleanup);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-registry-'));
  liveDirs.add(dir);
  const dataDir = join(dir, 'data');
  const mode = options.auth ?? 'none';
  const user = mode === 'none' ? undefined : (options.user ?? DEFAULT_USER);

  let tokenServer: TokenServer | undefined;
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (child) {
      await killAndWait(child);
      liveProcesses.delete(child);
    }
    await tokenServer?.stop();
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };

  try {
    const port = await freePort();
    const auth = user && mode !== 'none' ? await authConfig(mode, dir, user, options.refreshToken) : undefined;
    tokenServer = auth?.tokenServer;
    const configPath = join(dir, 'config.yml');
    const tls = options.tls ? await selfSignedCertificate(dir) : undefined;
    // JSON is valid YAML, so the registry reads it as is.
    await writeFile(configPath, JSON.stringify(registryConfig(port, dataDir, auth?.auth, options.notifyUrl ? { url: options.notifyUrl, token: options.notifyToken } : undefined, tls), null, 2));

    const spawned = spawn('docker-registry', ['serve', configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: registryEnv(),
    });
    child = spawned;
    liveProcesses.add(spawned);
    let output = '';
    let spawnError: Error | undefined;
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-OUTPUT_TAIL_BYTES);
    };
    spawned.stdout?.on('data', collect);
    spawned.stderr?.on('data', collect);
    spawned.on('error', (error) => {
      spawnError = error;
    });

    const host = `127.0.0.1:${port}`;
    const url = `${tls ? 'https' : 'http'}://${host}`;
    await waitUntilReady(url, () => spawnError?.message ?? exitReason(spawned), () => output);

    return {
      host,
      url,
      dataDir,
      pid: spawned.pid!,
      user,
      ...(tls && { caFile: tls.certificate }),
      stop,
      get tokenRequests() {
        return tokenServer?.requests;
      },
      get tokenRefreshes() {
        return tokenServer?.refreshes;
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Upload sessions the registry holds open for `repository`, read from its storage: a session's
 * directory keeps its `startedat` until it is cancelled or completed (distribution 2.8 leaves
 * an empty `hashstates` behind). What a client that cancels its uploads leaves is none.
 */
export async function openUploads(registry: RunningRegistry, repository: string): Promise<string[]> {
  const uploads = join(registry.dataDir, 'docker/registry/v2/repositories', repository, '_uploads');
  let sessions: string[];
  try {
    sessions = await readdir(uploads);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const open = await Promise.all(sessions.map(async (session) => ((await readdir(join(uploads, session))).includes('startedat') ? [session] : [])));
  return open.flat();
}

import { execFile } from 'node:child_process';
import { checkedCredentials, type Login } from './credentials.js';
import { RegistryError } from './errors.js';

/**
 * Docker credential helpers: `docker-credential-<name> get` reads a server URL on stdin and
 * answers `{"ServerURL","Username","Secret"}` on stdout, or exits 1 saying it has none
 * (https://github.com/docker/docker-credential-helpers, client/client.go).
 */

/** The part after `docker-credential-`: a program name, never a path. */
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const HELPER_NAME_MAX_LENGTH = 100;
/** What every helper says, on stdout, when it holds nothing for the server (credentials/error.go). */
const NOT_FOUND = 'credentials not found in native keychain';
/** docker's name for an identity token kept in a helper (cli/config/credentials/native_store.go). */
const TOKEN_USERNAME = '<token>';
/** Docker Hub's names, the one `docker login` keeps its login under first. */
export const DOCKER_HUB_HOSTS = ['index.docker.io', 'docker.io', 'registry-1.docker.io'];
/** The server docker asks helpers for Docker Hub's login. */
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';
const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_OUTPUT_BYTES = 1024 * 1024;
const STDERR_QUOTED_CHARS = 300;

export function isHelperName(name: string): boolean {
  return name.length <= HELPER_NAME_MAX_LENGTH && HELPER_NAME.test(name);
}

export interface HelperOptions {
  /** The helper's environment, PATH included (default: this process's). */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

interface Outcome {
  error: (Error & { code?: unknown; killed?: boolean }) | null;
  stdout: string;
  stderr: string;
}

/**
 * Asks the helper for the registry's login, giving it the server as docker does: the registry
 * host, or `https://index.docker.io/v1/` for Docker Hub. Undefined when it has none. Failures
 * name the helper and the registry and may quote its stderr, never its stdout, which can hold
 * the secret.
 */
export async function helperLogin(helper: string, registry: string, options: HelperOptions = {}): Promise<Login | undefined> {
  const program = `docker-credential-${helper}`;
  const what = `credential helper ${program} for ${registry}`;
  if (!isHelperName(helper)) throw new RegistryError('INVALID_CONFIG', `${JSON.stringify(helper)} is not a credential helper name (the part after docker-credential-, as in ecr-login)`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const server = DOCKER_HUB_HOSTS.includes(registry.toLowerCase()) ? DOCKER_HUB_SERVER : registry;
  const { error, stdout, stderr } = await run(program, server, options.env ?? process.env, timeoutMs);
  if (error) {
    if (error.code === 'ENOENT') throw new RegistryError('INVALID_CONFIG', `${what}: ${program} is not on PATH`);
    if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') throw new RegistryError('PROTOCOL', `${what}: it answered more than ${MAX_OUTPUT_BYTES / 1024} KiB`);
    if (error.killed) throw new RegistryError('TIMEOUT', `${what}: no answer within ${timeoutMs / 1000} s; stopped it`);
    if (stdout.trim() === NOT_FOUND) return undefined;
    const said = lastLine(stderr);
    throw new RegistryError('UNAUTHORIZED', `${what} failed (${exitOf(error)})${said ? `: ${said}` : ''}`);
  }
  return loginOf(stdout, what);
}

function run(program: string, server: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = execFile(
      program,
      ['get'],
      { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, windowsHide: true },
      (error, stdout, stderr) => resolve({ error, stdout, stderr }),
    );
    // A helper that exits without reading its stdin makes this write fail; its exit says why.
    child.stdin?.on('error', () => {});
    child.stdin?.end(server);
  });
}

function exitOf(error: Outcome['error']): string {
  const { code, signal } = error as { code?: unknown; signal?: unknown };
  if (typeof code === 'number') return `exit code ${code}`;
  if (typeof signal === 'string') return `signal ${signal}`;
  return typeof code === 'string' ? code : 'no exit code';
}

function lastLine(text: string): string {
  const line = text.trim().split('\n').at(-1)?.trim() ?? '';
  return line.length > STDERR_QUOTED_CHARS ? `${line.slice(0, STDERR_QUOTED_CHARS)}…` : line;
}

function loginOf(stdout: string, what: string): Login {
  let answer: unknown;
  try {
    answer = JSON.parse(stdout);
  } catch {
    // Neither the output nor the parser's message, which quotes it.
    throw new RegistryError('PROTOCOL', `${what}: its answer is not JSON`);
  }
  const { Username: username, Secret: secret } = (typeof answer === 'object' && answer !== null ? answer : {}) as Record<string, unknown>;
  if (typeof username !== 'string' || typeof secret !== 'string') {
    throw new RegistryError('PROTOCOL', `${what}: its answer lacks a string "Username" and "Secret"`);
  }
  if (username === TOKEN_USERNAME) {
    if (secret === '') throw new RegistryError('PROTOCOL', `${what}: its identity token is empty`);
    return { identityToken: secret };
  }
  return checkedCredentials(username, secret, what);
}

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError } from './errors.js';

export interface Credentials {
  username: string;
  password: string;
}

const DOCKER_HUB_HOSTS = ['index.docker.io', 'docker.io', 'registry-1.docker.io'];
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// Messages name where credentials came from and at most the username, never the password.
function invalid(message: string): RegistryError {
  return new RegistryError('INVALID_CONFIG', message);
}

function checked(username: string, password: string, source: string): Credentials {
  if (username === '') throw invalid(`${source} has an empty username`);
  // Basic authentication cannot carry a ':' in the username (RFC 7617).
  if (username.includes(':')) throw invalid(`${source} has a username containing ":"`);
  if (password === '') throw invalid(`${source} has an empty password for user ${JSON.stringify(username)}`);
  return { username, password };
}

function split(value: string, source: string): Credentials {
  const colon = value.indexOf(':');
  if (colon === -1) throw invalid(`${source} must have the form "username:password"`);
  return checked(value.slice(0, colon), value.slice(colon + 1), source);
}

export function parseCredentials(value: string): Credentials {
  return split(value, 'credentials');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `https://index.docker.io/v1/` -> `index.docker.io`; keys with any other path stay unmatched. */
function authKeyHost(key: string): string {
  return key
    .replace(/^https?:\/\//i, '')
    .replace(/\/(?:v[12]\/?)?$/, '')
    .toLowerCase();
}

async function readConfig(path: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RegistryError('INVALID_CONFIG', `cannot read Docker config ${path}: ${(error as Error).message}`, { cause: error });
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    // No cause and no parser message: both quote the file's text, which holds credentials.
    throw invalid(`Docker config ${path} is not valid JSON`);
  }
  if (!isRecord(config)) throw invalid(`Docker config ${path} is not a JSON object`);
  return config;
}

function entryCredentials(entry: unknown, source: string): Credentials | undefined {
  if (!isRecord(entry)) throw invalid(`${source} is not an object`);
  const { auth, username, password, identitytoken } = entry;
  // An identity token needs the OAuth refresh-token flow (e.g. `az acr login`), which ferry does not do.
  if (identitytoken !== undefined && identitytoken !== '') return undefined;
  if (auth !== undefined && auth !== '') {
    if (typeof auth !== 'string' || !BASE64.test(auth)) throw invalid(`${source} has an "auth" that is not base64`);
    return split(Buffer.from(auth, 'base64').toString('utf8'), `decoded "auth" of ${source}`);
  }
  // An empty entry is what `docker login` leaves when a credential store holds the secret.
  if (username === undefined && password === undefined) return undefined;
  if (typeof username !== 'string' || typeof password !== 'string') {
    throw invalid(`${source} must have string "username" and "password" fields`);
  }
  return checked(username, password, source);
}

export async function dockerConfigCredentials(
  registry: string,
  options: { configPath?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Credentials | undefined> {
  const env = options.env ?? process.env;
  const path =
    options.configPath ?? join(env['DOCKER_CONFIG'] || join(env['HOME'] || homedir(), '.docker'), 'config.json');
  const config = await readConfig(path);
  const auths = config?.['auths'];
  if (auths === undefined) return undefined;
  if (!isRecord(auths)) throw invalid(`"auths" in Docker config ${path} is not an object`);

  const host = registry.toLowerCase();
  const hosts = DOCKER_HUB_HOSTS.includes(host) ? DOCKER_HUB_HOSTS : [host];
  for (const candidate of hosts) {
    for (const [key, entry] of Object.entries(auths)) {
      if (authKeyHost(key) !== candidate) continue;
      const credentials = entryCredentials(entry, `auths[${JSON.stringify(key)}] in Docker config ${path}`);
      if (credentials !== undefined) return credentials;
    }
  }
  return undefined;
}

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_HUB_HOSTS, helperLogin } from './credential-helper.js';
import { checkedCredentials, invalid, split, type Login } from './credentials.js';
import { RegistryError } from './errors.js';

/**
 * Logins from docker's `config.json`, found as docker finds them: a registry's helper in
 * `credHelpers`, else the `credsStore` helper, else its entry in `auths`.
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

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

function entryLogin(entry: unknown, source: string): Login | undefined {
  if (!isRecord(entry)) throw invalid(`${source} is not an object`);
  const { auth, username, password, identitytoken } = entry;
  // docker's registry client prefers the refresh token to a username and password beside it.
  if (identitytoken !== undefined && identitytoken !== '') {
    if (typeof identitytoken !== 'string') throw invalid(`${source} has an "identitytoken" that is not a string`);
    return { identityToken: identitytoken };
  }
  if (auth !== undefined && auth !== '') {
    if (typeof auth !== 'string' || !BASE64.test(auth)) throw invalid(`${source} has an "auth" that is not base64`);
    return split(Buffer.from(auth, 'base64').toString('utf8'), `decoded "auth" of ${source}`);
  }
  // An empty entry is what `docker login` leaves when a credential store holds the secret.
  if (username === undefined && password === undefined) return undefined;
  if (typeof username !== 'string' || typeof password !== 'string') {
    throw invalid(`${source} must have string "username" and "password" fields`);
  }
  return checkedCredentials(username, password, source);
}

/** The keys of a config map that name this registry, the form `docker login` writes first for Docker Hub. */
function keysFor(registry: string, map: Record<string, unknown>): string[] {
  const host = registry.toLowerCase();
  const hosts = DOCKER_HUB_HOSTS.includes(host) ? DOCKER_HUB_HOSTS : [host];
  return hosts.flatMap((candidate) => Object.keys(map).filter((key) => authKeyHost(key) === candidate));
}

/**
 * The helper docker would ask for this registry: its own in `credHelpers`, else `credsStore`
 * (docker/cli cli/config/configfile/file.go, getConfiguredCredentialStore).
 */
function configuredHelper(config: Record<string, unknown>, registry: string, path: string): string | undefined {
  const { credHelpers, credsStore } = config;
  if (credHelpers !== undefined) {
    if (!isRecord(credHelpers)) throw invalid(`"credHelpers" in Docker config ${path} is not an object`);
    const key = keysFor(registry, credHelpers)[0];
    if (key !== undefined) {
      const helper = credHelpers[key];
      if (typeof helper !== 'string' || helper === '') throw invalid(`credHelpers[${JSON.stringify(key)}] in Docker config ${path} is not a helper name`);
      return helper;
    }
  }
  if (credsStore === undefined || credsStore === '') return undefined;
  if (typeof credsStore !== 'string') throw invalid(`"credsStore" in Docker config ${path} is not a helper name`);
  return credsStore;
}

/**
 * The login docker would use for `registry`, from `$DOCKER_CONFIG/config.json` (default
 * `~/.docker/config.json`). A configured helper is the only source, as in docker: one that has
 * nothing for the registry means anonymous, whatever `auths` holds.
 */
export async function dockerConfigLogin(
  registry: string,
  options: { configPath?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Login | undefined> {
  const env = options.env ?? process.env;
  const path =
    options.configPath ?? join(env['DOCKER_CONFIG'] || join(env['HOME'] || homedir(), '.docker'), 'config.json');
  const config = await readConfig(path);
  if (config === undefined) return undefined;
  const helper = configuredHelper(config, registry, path);
  if (helper !== undefined) return helperLogin(helper, registry, { env });
  const auths = config['auths'];
  if (auths === undefined) return undefined;
  if (!isRecord(auths)) throw invalid(`"auths" in Docker config ${path} is not an object`);
  for (const key of keysFor(registry, auths)) {
    const login = entryLogin(auths[key], `auths[${JSON.stringify(key)}] in Docker config ${path}`);
    if (login !== undefined) return login;
  }
  return undefined;
}

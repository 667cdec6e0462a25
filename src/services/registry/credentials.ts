import { RegistryError } from './errors.js';

export interface Credentials {
  username: string;
  password: string;
}

/**
 * An OAuth2 refresh token (docker's `identitytoken`, kept by `docker login` for registries whose
 * token server hands them out), traded at a Bearer registry's token realm for access tokens.
 */
export interface IdentityToken {
  identityToken: string;
}

/** What ferry logs in to a registry with. */
export type Login = Credentials | IdentityToken;

// Messages name where credentials came from and at most the username, never the password.
export function invalid(message: string): RegistryError {
  return new RegistryError('INVALID_CONFIG', message);
}

export function checkedCredentials(username: string, password: string, source: string): Credentials {
  if (username === '') throw invalid(`${source} has an empty username`);
  // Basic authentication cannot carry a ':' in the username (RFC 7617).
  if (username.includes(':')) throw invalid(`${source} has a username containing ":"`);
  if (password === '') throw invalid(`${source} has an empty password for user ${JSON.stringify(username)}`);
  return { username, password };
}

export function split(value: string, source: string): Credentials {
  const colon = value.indexOf(':');
  if (colon === -1) throw invalid(`${source} must have the form "username:password"`);
  return checkedCredentials(value.slice(0, colon), value.slice(colon + 1), source);
}

export function parseCredentials(value: string): Credentials {
  return split(value, 'credentials');
}

import { X509Certificate } from 'node:crypto';
import { isHelperName } from '../registry/credential-helper.js';
import type { Credentials } from '../registry/credentials.js';
import type { RegistryInput } from '../store/types.js';
import { InvalidInputError } from './errors.js';
import { checkGiven, checkName, required, type FieldChecks } from './fields.js';

/**
 * The rules for registries, whether they come from the API or from a ferry.yaml (`ferry serve
 * --config`, `ferry sync -c`).
 *
 * Uniqueness is the one rule not checked here: a name or URL another registry has is refused
 * by the store (ConflictError), the only place that sees every registry when it writes. URLs
 * must be unique because jobs find a registry's settings by URL.
 */

/** A registry as stored: every setting present. */
export type RegistrySettings = Required<RegistryInput>;

export const REGISTRY_DEFAULTS: Omit<RegistrySettings, 'name' | 'url'> = { insecure: false, ca: null, credentials: null, credentialHelper: null, requestsPerSecond: null };

const DOMAIN_COMPONENT = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
/** A registry as references name it: a host (or bracketed IPv6 address) and an optional port. */
const REGISTRY_HOST = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]{1,5})?$`);

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

const checks: FieldChecks<RegistryInput, RegistrySettings> = {
  name: checkName,
  url: checkUrl,
  insecure: (insecure) => insecure,
  ca: (ca) => (ca === null ? null : checkCa(ca)),
  credentials: (credentials) => (credentials === null ? null : checkCredentials(credentials)),
  credentialHelper: (helper) => (helper === null ? null : checkHelper(helper)),
  requestsPerSecond: (rate) => (rate === null ? null : checkRequestsPerSecond(rate)),
};

/** A new registry's settings, defaults filled in; throws InvalidInputError naming the first setting that breaks a rule. */
export function checkRegistry(input: RegistryInput): RegistrySettings {
  const checked = oneLogin(checkGiven(input, checks));
  return { ...REGISTRY_DEFAULTS, ...checked, name: required(checked.name, 'name'), url: required(checked.url, 'url') };
}

/**
 * The settings a change gives, checked; those it leaves out keep their stored value, except
 * that giving credentials or a helper removes the other.
 */
export function checkRegistryPatch(patch: Partial<RegistryInput>): Partial<RegistrySettings> {
  return oneLogin(checkGiven(patch, checks));
}

/** A registry logs in one way: with its stored credentials, or with what its helper hands out. */
function oneLogin(settings: Partial<RegistrySettings>): Partial<RegistrySettings> {
  const { credentials, credentialHelper } = settings;
  if (credentials && credentialHelper) throw new InvalidInputError('credentialHelper', 'cannot be given with credentials: a registry logs in with one or the other');
  if (credentials) return { ...settings, credentialHelper: null };
  if (credentialHelper) return { ...settings, credentials: null };
  return settings;
}

function checkUrl(url: string): string {
  // The grammar allows ports and IPv6 literals no URL can hold (port 99999, [::::1]).
  if (!REGISTRY_HOST.test(url) || !URL.canParse(`https://${url}/`)) {
    throw new InvalidInputError('url', `${JSON.stringify(url)} is not a registry host as in image references (ghcr.io, registry.example.com:5000, [::1]:5000), without scheme or path`);
  }
  return url;
}

/** Refused when written rather than when a job first connects, which would fail every job of the registry. */
function checkCa(ca: string): string {
  const certificates = ca.match(CERTIFICATE) ?? [];
  if (certificates.length === 0) throw new InvalidInputError('ca', 'holds no PEM certificate (a -----BEGIN CERTIFICATE----- block)');
  certificates.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (error) {
      throw new InvalidInputError('ca', `certificate ${i + 1} of ${certificates.length} cannot be read: ${(error as Error).message}`);
    }
  });
  return ca;
}

function checkHelper(helper: string): string {
  if (!isHelperName(helper)) {
    throw new InvalidInputError('credentialHelper', `${JSON.stringify(helper)} is not a credential helper name (the part after docker-credential-, as in ecr-login): up to 100 letters, digits, ".", "_" and "-", not starting with "." or "-"`);
  }
  return helper;
}

/** A registry's ceiling, however it is given (the API, ferry.yaml, `ferry copy --src-rate`). */
export function checkRequestsPerSecond(rate: number): number {
  if (!Number.isFinite(rate) || rate <= 0) throw new InvalidInputError('requestsPerSecond', `${rate} is not a positive number of requests per second`);
  return rate;
}

function checkCredentials({ username, password }: Credentials): Credentials {
  if (username === '') throw new InvalidInputError('credentials.username', 'must not be empty');
  // Basic authentication joins them with a colon: one in the username would move the split.
  if (username.includes(':')) throw new InvalidInputError('credentials.username', `${JSON.stringify(username)} contains ":", which basic authentication cannot carry in a username`);
  if (password === '') throw new InvalidInputError('credentials.password', 'must not be empty');
  return { username, password };
}

import { describe, expect, it } from 'vitest';
import type { RegistryInput } from '../store/types.js';
import { InvalidInputError } from './errors.js';
import { checkRegistry, checkRegistryPatch, REGISTRY_DEFAULTS } from './registry.js';

/** A self-signed test certificate: read, never trusted. */
const CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIBjDCCATOgAwIBAgIUUjW/GcdncP0IrwG6MpdLsXQ0aeowCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRZmVycnktZG9tYWluLXRlc3QwHhcNMjYxMTMwMTAxMzUwWhcN
MjYxMjAxMTAxMzUwWjAcMRowGAYDVQQDDBFmZXJyeS1kb21haW4tdGVzdDBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABLN/yKNN2zKQSNBwtvLu+UZOOvxLZMY1x2qo
G9qF7pZvH3bloISlirgYDOIVcQTG2GlceLH8dChjD7pGf7HoU9SjUzBRMB0GA1Ud
DgQWBBRYbjL+edArvdoTyK3F6bX/5ZbGhTAfBgNVHSMEGDAWgBRYbjL+edArvdoT
yK3F6bX/5ZbGhTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIGvX
5bqICkz0/SYXPHgf3K4KFl/FduOvl7k5dxtc27NdAiAnnJYardyykN1rX3q9w+3W
qrTu+e6DclIP2jfYQcG+jQ==
-----END CERTIFICATE-----
`;

function refusal(check: () => unknown): InvalidInputError {
  try {
    check();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return error as InvalidInputError;
  }
  throw new Error('expected an InvalidInputError');
}

describe('checkRegistry', () => {
  it('fills in the defaults', () => {
    expect(checkRegistry({ name: 'hub', url: 'docker.io' })).toEqual({ name: 'hub', url: 'docker.io', ...REGISTRY_DEFAULTS });
    expect(REGISTRY_DEFAULTS).toEqual({ insecure: false, ca: null, credentials: null, credentialHelper: null, requestsPerSecond: null });
  });

  it.each(['ghcr.io', 'registry.example.com:5000', '127.0.0.1:5000', 'localhost', '[::1]:5000', 'my-registry'])('takes the host %j', (url) => {
    expect(checkRegistry({ name: 'r', url }).url).toBe(url);
  });

  it('keeps every setting given, without the keys that are not settings', () => {
    const input = { name: 'r', url: 'r.io', insecure: true, ca: CERTIFICATE, credentials: { username: 'robot', password: 'p:w' }, requestsPerSecond: 0.5, colour: 'red' };
    expect(checkRegistry(input as RegistryInput)).toEqual({ name: 'r', url: 'r.io', insecure: true, ca: CERTIFICATE, credentials: { username: 'robot', password: 'p:w' }, credentialHelper: null, requestsPerSecond: 0.5 });
  });

  it('takes a credential helper instead of credentials', () => {
    expect(checkRegistry({ name: 'ecr', url: 'r.io', credentialHelper: 'ecr-login' })).toEqual({ ...REGISTRY_DEFAULTS, name: 'ecr', url: 'r.io', credentialHelper: 'ecr-login' });
  });

  it.each<[string, Partial<RegistryInput>, string, RegExp]>([
    ['a missing name', { name: undefined }, 'name', /^name is required$/],
    ['an empty name', { name: ' ' }, 'name', /^name must not be empty$/],
    ['a name too long', { name: 'n'.repeat(201) }, 'name', /^name is 201 characters long, more than 200$/],
    ['a missing URL', { url: undefined }, 'url', /^url is required$/],
    ['a URL with a scheme', { url: 'https://r.io' }, 'url', /^url "https:\/\/r\.io" is not a registry host .*without scheme or path$/],
    ['a URL with a path', { url: 'r.io/v2' }, 'url', /^url "r\.io\/v2" is not a registry host/],
    ['a port no URL can hold', { url: 'r.io:99999' }, 'url', /^url "r\.io:99999" is not a registry host/],
    ['a CA without a certificate', { ca: 'not a certificate' }, 'ca', /^ca holds no PEM certificate \(a -----BEGIN CERTIFICATE----- block\)$/],
    ['an empty CA', { ca: '' }, 'ca', /^ca holds no PEM certificate/],
    [
      'a CA whose second certificate is damaged',
      { ca: `${CERTIFICATE}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n` },
      'ca',
      /^ca certificate 2 of 2 cannot be read: /,
    ],
    ['an empty username', { credentials: { username: '', password: 'p' } }, 'credentials.username', /^credentials\.username must not be empty$/],
    ['a username with a colon', { credentials: { username: 'a:b', password: 'p' } }, 'credentials.username', /^credentials\.username "a:b" contains ":"/],
    ['an empty password', { credentials: { username: 'robot', password: '' } }, 'credentials.password', /^credentials\.password must not be empty$/],
    ['a helper given as a path', { credentialHelper: '/usr/bin/docker-credential-ecr-login' }, 'credentialHelper', /^credentialHelper "\/usr\/bin\/docker-credential-ecr-login" is not a credential helper name \(the part after docker-credential-, as in ecr-login\): up to 100 letters/],
    ['an empty helper', { credentialHelper: '' }, 'credentialHelper', /^credentialHelper "" is not a credential helper name/],
    [
      'credentials and a helper together',
      { credentials: { username: 'robot', password: 'p' }, credentialHelper: 'ecr-login' },
      'credentialHelper',
      /^credentialHelper cannot be given with credentials: a registry logs in with one or the other$/,
    ],
    ['a rate of nothing', { requestsPerSecond: 0 }, 'requestsPerSecond', /^requestsPerSecond 0 is not a positive number of requests per second$/],
    ['a rate that is no number', { requestsPerSecond: Number.NaN }, 'requestsPerSecond', /^requestsPerSecond NaN is not a positive number/],
  ])('refuses %s, naming the field', (_, change, field, message) => {
    const error = refusal(() => checkRegistry({ name: 'r', url: 'r.io', ...change } as RegistryInput));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('never puts a password in a message', () => {
    const error = refusal(() => checkRegistry({ name: 'r', url: 'r.io', credentials: { username: 'a:b', password: 'secret-5c1e' } }));
    expect(error.message).not.toContain('secret-5c1e');
  });
});

describe('checkRegistryPatch', () => {
  it('checks only what a change gives, and adds no defaults', () => {
    expect(checkRegistryPatch({ name: 'renamed' })).toEqual({ name: 'renamed' });
    expect(checkRegistryPatch({ credentials: null, ca: null, url: undefined })).toEqual({ credentials: null, ca: null });
  });

  it('refuses what a new registry would be refused', () => {
    expect(refusal(() => checkRegistryPatch({ url: 'https://r.io' })).field).toBe('url');
    expect(refusal(() => checkRegistryPatch({ name: '' })).field).toBe('name');
    expect(refusal(() => checkRegistryPatch({ credentials: { username: 'u', password: 'p' }, credentialHelper: 'gcr' })).field).toBe('credentialHelper');
  });

  it('removes the credentials when a change gives a helper, and the helper when it gives credentials', () => {
    expect(checkRegistryPatch({ credentialHelper: 'ecr-login' })).toEqual({ credentialHelper: 'ecr-login', credentials: null });
    expect(checkRegistryPatch({ credentials: { username: 'u', password: 'p' } })).toEqual({ credentials: { username: 'u', password: 'p' }, credentialHelper: null });
    expect(checkRegistryPatch({ credentialHelper: null })).toEqual({ credentialHelper: null });
    expect(checkRegistryPatch({ credentials: null, credentialHelper: 'gcr' })).toEqual({ credentials: null, credentialHelper: 'gcr' });
  });
});

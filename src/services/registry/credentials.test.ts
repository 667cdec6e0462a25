import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCredentials } from './credentials.js';
import { RegistryError } from './errors.js';

const username = fc.string({ minLength: 1 }).filter((u) => !u.includes(':'));
const password = fc.string({ unit: 'binary', minLength: 1 });
const secret = fc.string({ unit: 'binary' }).map((s) => `S3CRET-${s}`);

function messageOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toHaveProperty('code', 'INVALID_CONFIG');
    return (error as RegistryError).message;
  }
  throw new Error('expected a RegistryError');
}

describe('parseCredentials', () => {
  it.each([
    ['user:pass', { username: 'user', password: 'pass' }],
    ['user:pa:ss:', { username: 'user', password: 'pa:ss:' }],
    ['user::', { username: 'user', password: ':' }],
    ['u s e r:p a s s', { username: 'u s e r', password: 'p a s s' }],
  ])('parses %j', (value, expected) => {
    expect(parseCredentials(value)).toStrictEqual(expected);
  });

  it.each([
    ['hunter2', 'credentials must have the form "username:password"'],
    ['', 'credentials must have the form "username:password"'],
    [':hunter2', 'credentials has an empty username'],
    ['alice:', 'credentials has an empty password for user "alice"'],
  ])('rejects %j without echoing the password', (value, message) => {
    expect(messageOf(() => parseCredentials(value))).toBe(message);
  });

  it('round-trips username:password', () => {
    fc.assert(
      fc.property(username, password, (u, p) => {
        expect(parseCredentials(`${u}:${p}`)).toStrictEqual({ username: u, password: p });
      }),
    );
  });

  it('never throws anything but RegistryError, and never puts the password in its message', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        try {
          parseCredentials(value);
        } catch (error) {
          expect(error).toBeInstanceOf(RegistryError);
        }
      }),
    );
    fc.assert(
      fc.property(secret, (s) => {
        const withoutColon = s.replaceAll(':', '');
        expect(messageOf(() => parseCredentials(withoutColon))).not.toContain('S3CRET');
        expect(messageOf(() => parseCredentials(`:${s}`))).not.toContain('S3CRET');
      }),
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { digestOf, isDigest, parseDigest } from './digest.js';
import { RegistryError } from './errors.js';

const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const EMPTY_SHA512 =
  'sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e';

const hex = (length: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${length}}$`));
const validDigest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);

describe('digestOf', () => {
  it('hashes with sha256 by default', () => {
    expect(digestOf(new Uint8Array())).toBe(EMPTY_SHA256);
    expect(digestOf(new TextEncoder().encode('abc'))).toBe(
      'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('hashes with sha512 when asked', () => {
    expect(digestOf(new Uint8Array(), 'sha512')).toBe(EMPTY_SHA512);
  });

  it('always produces a digest that parses back', () => {
    fc.assert(
      fc.property(fc.uint8Array(), fc.constantFrom('sha256' as const, 'sha512' as const), (bytes, algorithm) => {
        const digest = digestOf(bytes, algorithm);
        expect(isDigest(digest)).toBe(true);
        expect(parseDigest(digest).algorithm).toBe(algorithm);
      }),
    );
  });
});

describe('parseDigest', () => {
  it('splits algorithm and hex', () => {
    expect(parseDigest(EMPTY_SHA256)).toEqual({
      algorithm: 'sha256',
      hex: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
    expect(parseDigest(EMPTY_SHA512).algorithm).toBe('sha512');
  });

  it.each([
    ['', /expected "<algorithm>:<hex>"/],
    ['e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', /expected "<algorithm>:<hex>"/],
    ['md5:d41d8cd98f00b204e9800998ecf8427e', /unsupported algorithm "md5"/],
    ['toString:abc', /unsupported algorithm "toString"/],
    ['SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', /unsupported algorithm/],
    ['sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855', /64 lowercase hex/],
    ['sha256:e3b0c442', /64 lowercase hex/],
    [`sha512:${'a'.repeat(64)}`, /128 lowercase hex/],
    [`${EMPTY_SHA256} `, /64 lowercase hex/],
  ])('rejects %j', (input, reason) => {
    expect(() => parseDigest(input)).toThrow(RegistryError);
    expect(() => parseDigest(input)).toThrow(reason);
    expect(() => parseDigest(input)).toThrow(JSON.stringify(input));
  });

  it('throws INVALID_REFERENCE', () => {
    expect(() => parseDigest('nope')).toThrow(expect.objectContaining({ code: 'INVALID_REFERENCE' }));
  });

  it('round-trips valid digests', () => {
    fc.assert(
      fc.property(validDigest, (digest) => {
        const { algorithm, hex: encoded } = parseDigest(digest);
        expect(`${algorithm}:${encoded}`).toBe(digest);
      }),
    );
  });

  it('never throws anything but RegistryError, and agrees with isDigest', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), validDigest, fc.string().map((s) => `sha256:${s}`)), (input) => {
        let parsed = true;
        try {
          parseDigest(input);
        } catch (error) {
          expect(error).toBeInstanceOf(RegistryError);
          parsed = false;
        }
        expect(isDigest(input)).toBe(parsed);
      }),
    );
  });
});

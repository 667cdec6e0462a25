import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from './errors.js';
import type { Reference } from './reference.js';
import { formatReference, isLoopbackRegistry, parseReference, registryEndpointHost } from './reference.js';

const SHA256 = `sha256:${'a1'.repeat(32)}`;
const SHA512 = `sha512:${'0f'.repeat(64)}`;

const label = fc.stringMatching(/^[a-z](?:[a-z0-9-]{0,8}[a-z0-9])?$/).filter((l) => !l.startsWith('xn--'));
const port = fc.integer({ min: 1, max: 65_535 });
const domainName = fc
  .tuple(fc.array(label, { minLength: 2, maxLength: 4 }), fc.option(port, { nil: undefined }))
  .map(([labels, p]) => labels.join('.') + (p === undefined ? '' : `:${p}`))
  .filter((domain) => domain !== 'index.docker.io');
const registry = fc.oneof(
  domainName,
  fc.constantFrom('docker.io', 'localhost', 'localhost:5000', '127.0.0.1:5000', '[::1]:5000', '[2001:db8::1]'),
);
const pathComponent = fc.stringMatching(/^[a-z0-9]{1,8}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,8}){0,3}$/);
const tag = fc.stringMatching(/^\w[\w.-]{0,127}$/);
const hex = (length: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${length}}$`));
const digest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
  fc.stringMatching(/^[a-z0-9]{1,6}(?:[.+_-][a-z0-9]{1,6}){0,2}:[a-zA-Z0-9=_-]{1,40}$/).filter((d) => !/^sha(?:256|512):/.test(d)),
);

const validReference: fc.Arbitrary<Reference> = fc
  .record({
    registry,
    components: fc.array(pathComponent, { minLength: 1, maxLength: 4 }),
    tag: fc.option(tag, { nil: undefined }),
    digest: fc.option(digest, { nil: undefined }),
  })
  .map(({ registry, components, tag, digest }) => ({
    registry,
    repository: (registry === 'docker.io' && components.length === 1 ? ['library', ...components] : components).join('/'),
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  }))
  .filter((ref) => ref.registry.length + 1 + ref.repository.length <= 255);

const referenceLike = fc.string({ unit: fc.constantFrom(...'abAZ09._-/:@[]'), maxLength: 40 });

function parsesOrThrowsRegistryError(input: string): Reference | undefined {
  try {
    return parseReference(input);
  } catch (error) {
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toHaveProperty('code', 'INVALID_REFERENCE');
    return undefined;
  }
}

describe('parseReference', () => {
  it.each<[string, Reference]>([
    ['ubuntu', { registry: 'docker.io', repository: 'library/ubuntu' }],
    ['ubuntu:22.04', { registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04' }],
    ['library/ubuntu', { registry: 'docker.io', repository: 'library/ubuntu' }],
    ['bitnami/redis:7.2', { registry: 'docker.io', repository: 'bitnami/redis', tag: '7.2' }],
    ['docker.io/ubuntu', { registry: 'docker.io', repository: 'library/ubuntu' }],
    ['index.docker.io/ubuntu', { registry: 'docker.io', repository: 'library/ubuntu' }],
    ['index.docker.io/bitnami/redis', { registry: 'docker.io', repository: 'bitnami/redis' }],
    ['registry-1.docker.io/ubuntu', { registry: 'registry-1.docker.io', repository: 'ubuntu' }],
    [`ghcr.io/org/app:v1@${SHA256}`, { registry: 'ghcr.io', repository: 'org/app', tag: 'v1', digest: SHA256 }],
    [`quay.io/org/app@${SHA512}`, { registry: 'quay.io', repository: 'org/app', digest: SHA512 }],
    ['localhost/app', { registry: 'localhost', repository: 'app' }],
    ['localhost:5000/app:latest', { registry: 'localhost:5000', repository: 'app', tag: 'latest' }],
    ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
    ['[::1]:5000/app:dev', { registry: '[::1]:5000', repository: 'app', tag: 'dev' }],
    ['[2001:db8::1]/a/b', { registry: '[2001:db8::1]', repository: 'a/b' }],
    ['10.0.0.1:443/a', { registry: '10.0.0.1:443', repository: 'a' }],
    ['Registry.Example.com/a', { registry: 'Registry.Example.com', repository: 'a' }],
    ['r.example.com/a_b/c__d/e-f--g/h.i', { registry: 'r.example.com', repository: 'a_b/c__d/e-f--g/h.i' }],
    ['r.example.com/a:Tag_1.x-y', { registry: 'r.example.com', repository: 'a', tag: 'Tag_1.x-y' }],
    [
      'r.example.com/a@multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8',
      { registry: 'r.example.com', repository: 'a', digest: 'multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8' },
    ],
    [`a:${'t'.repeat(128)}`, { registry: 'docker.io', repository: 'library/a', tag: 't'.repeat(128) }],
  ])('parses %j', (input, expected) => {
    expect(parseReference(input)).toStrictEqual(expected);
  });

  it.each([
    ['', /missing repository name/],
    [':latest', /missing repository name/],
    ['ghcr.io/', /missing repository name/],
    ['Ubuntu', /repository name "Ubuntu" must be lowercase/],
    ['ghcr.io/Org/app', /repository name "Org\/app" must be lowercase/],
    ['foo//bar', /invalid path component ""/],
    ['foo/', /invalid path component ""/],
    ['-foo', /invalid path component "-foo"/],
    ['foo-', /invalid path component "foo-"/],
    ['foo___bar', /invalid path component/],
    ['foo bar', /invalid path component/],
    [' ubuntu', /invalid path component/],
    ['foo:', /invalid tag ""/],
    ['foo:-x', /invalid tag "-x"/],
    [`foo:${'t'.repeat(129)}`, /invalid tag/],
    ['foo@', /invalid digest ""/],
    ['foo@sha256:abc', /invalid digest "sha256:abc"/],
    [`foo@${SHA256.toUpperCase()}`, /invalid digest/],
    [`foo@sha512:${'a'.repeat(64)}`, /invalid digest/],
    [`foo@${SHA256}@${SHA256}`, /invalid digest/],
    ['foo@Algo:x', /invalid digest/],
    ['exa_mple.com/foo', /invalid registry "exa_mple.com"/],
    ['example.com:99999/foo', /invalid registry "example.com:99999"/],
    ['example.com:/foo', /invalid registry/],
    ['[::1::2]:5000/foo', /invalid registry/],
    ['[::1]:5000', /invalid path component "\["/],
    [`r.example.com/${'a'.repeat(242)}`, /longer than 255 characters/],
    ['a'.repeat(250), /longer than 255 characters/],
  ])('rejects %j', (input, reason) => {
    expect(() => parseReference(input)).toThrow(reason);
    expect(() => parseReference(input)).toThrow(`invalid image reference ${JSON.stringify(input)}`);
    expect(parsesOrThrowsRegistryError(input)).toBeUndefined();
  });

  it('round-trips formatted references', () => {
    fc.assert(
      fc.property(validReference, (ref) => {
        expect(parseReference(formatReference(ref))).toStrictEqual(ref);
      }),
    );
  });

  it('normalises the short Docker Hub forms users type', () => {
    const hubReference = validReference.filter((ref) => ref.registry === 'docker.io');
    fc.assert(
      fc.property(hubReference, fc.constantFrom('', 'docker.io/', 'index.docker.io/'), (ref, prefix) => {
        const long = formatReference(ref);
        const short = prefix + long.slice('docker.io/'.length).replace(/^library\//, '');
        // Without a prefix, Docker reads a first component with a '.' (or 'localhost') as a registry.
        const first = short.slice(0, Math.max(short.indexOf('/'), 0));
        fc.pre(prefix !== '' || !(first.includes('.') || first === 'localhost'));
        expect(parseReference(short)).toStrictEqual(ref);
      }),
    );
  });

  it('never throws anything but RegistryError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), referenceLike), (input) => {
        parsesOrThrowsRegistryError(input);
      }),
    );
  });

  it('is idempotent through formatReference', () => {
    fc.assert(
      fc.property(fc.oneof(referenceLike, validReference.map(formatReference)), (input) => {
        const parsed = parsesOrThrowsRegistryError(input);
        if (parsed !== undefined) expect(parseReference(formatReference(parsed))).toStrictEqual(parsed);
      }),
    );
  });
});

describe('formatReference', () => {
  it('writes registry/repository[:tag][@digest]', () => {
    expect(formatReference({ registry: 'docker.io', repository: 'library/ubuntu' })).toBe('docker.io/library/ubuntu');
    expect(formatReference({ registry: 'ghcr.io', repository: 'o/a', tag: 'v1' })).toBe('ghcr.io/o/a:v1');
    expect(formatReference({ registry: 'ghcr.io', repository: 'o/a', digest: SHA256 })).toBe(`ghcr.io/o/a@${SHA256}`);
    expect(formatReference({ registry: 'localhost:5000', repository: 'a', tag: 'v1', digest: SHA256 })).toBe(
      `localhost:5000/a:v1@${SHA256}`,
    );
  });
});

describe('registryEndpointHost', () => {
  it('maps Docker Hub to its API host and leaves others alone', () => {
    expect(registryEndpointHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryEndpointHost('ghcr.io')).toBe('ghcr.io');
    expect(registryEndpointHost('localhost:5000')).toBe('localhost:5000');
  });

  it('is the identity for every registry but docker.io', () => {
    fc.assert(
      fc.property(registry, (r) => {
        expect(registryEndpointHost(r)).toBe(r === 'docker.io' ? 'registry-1.docker.io' : r);
      }),
    );
  });
});

describe('isLoopbackRegistry', () => {
  it.each(['localhost', 'localhost:5000', 'LOCALHOST:5000', '127.0.0.1', '127.0.0.1:5000', '127.255.1.2:80', '[::1]', '[::1]:5000'])(
    'accepts %j',
    (r) => {
      expect(isLoopbackRegistry(r)).toBe(true);
    },
  );

  it.each([
    'docker.io',
    'localhost.example.com',
    'mylocalhost:5000',
    '127.0.0.256',
    '127.0.0',
    '128.0.0.1',
    '1127.0.0.1',
    '[::2]',
    '[::1]x',
    'localhost:',
    'localhost:abc',
    'evil.com@localhost',
    '',
  ])('rejects %j', (r) => {
    expect(isLoopbackRegistry(r)).toBe(false);
  });

  it('accepts every 127.0.0.0/8 address with or without a port', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    fc.assert(
      fc.property(octet, octet, octet, fc.option(port, { nil: undefined }), (a, b, c, p) => {
        expect(isLoopbackRegistry(`127.${a}.${b}.${c}${p === undefined ? '' : `:${p}`}`)).toBe(true);
      }),
    );
  });

  it('rejects generated domain names', () => {
    fc.assert(
      fc.property(domainName, (domain) => {
        expect(isLoopbackRegistry(domain)).toBe(false);
      }),
    );
  });
});

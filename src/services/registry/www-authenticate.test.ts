import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from './errors.js';
import type { Challenge } from './www-authenticate.js';
import { parseWwwAuthenticate } from './www-authenticate.js';

const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
const paramName = fc.oneof(token, fc.constantFrom('__proto__', 'constructor', 'toString'));
const ows = fc.stringMatching(/^[ \t]{0,2}$/);
const quote = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`;

const generatedChallenge = fc.record({
  scheme: token,
  params: fc.uniqueArray(fc.tuple(paramName, fc.string({ unit: 'binary' }), fc.boolean()), {
    selector: ([name]) => name.toLowerCase(),
    maxLength: 5,
  }),
  separators: fc.array(fc.tuple(ows, ows), { minLength: 5, maxLength: 5 }),
});

type GeneratedChallenge = typeof generatedChallenge extends fc.Arbitrary<infer T> ? T : never;

function render({ scheme, params, separators }: GeneratedChallenge): string {
  const rendered = params.map(([name, value, bare], i) => {
    const [before, after] = separators[i] ?? ['', ''];
    const text = bare && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(value) ? value : quote(value);
    return `${name}${before}=${after}${text}`;
  });
  return rendered.length === 0 ? scheme : `${scheme} ${rendered.join(', ')}`;
}

function expected({ scheme, params }: GeneratedChallenge): Challenge {
  return {
    scheme: scheme.toLowerCase(),
    params: Object.fromEntries(params.map(([name, value]) => [name.toLowerCase(), value])),
  };
}

function parsesOrThrowsRegistryError(header: string): void {
  try {
    parseWwwAuthenticate(header);
  } catch (error) {
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toHaveProperty('code', 'INVALID_HEADER');
  }
}

describe('parseWwwAuthenticate', () => {
  it('parses a Docker Hub bearer challenge', () => {
    const header =
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"';
    expect(parseWwwAuthenticate(header)).toStrictEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/ubuntu:pull',
        },
      },
    ]);
  });

  it.each<[string, Challenge[]]>([
    [
      'Bearer realm="https://r/token",scope="repository:a/b:pull,push"',
      [{ scheme: 'bearer', params: { realm: 'https://r/token', scope: 'repository:a/b:pull,push' } }],
    ],
    [
      'Basic realm="x", Bearer realm="y",service="z"',
      [
        { scheme: 'basic', params: { realm: 'x' } },
        { scheme: 'bearer', params: { realm: 'y', service: 'z' } },
      ],
    ],
    ['Basic realm="a \\"quoted\\" \\\\ w\\ord"', [{ scheme: 'basic', params: { realm: 'a "quoted" \\ word' } }]],
    ['Basic realm=""', [{ scheme: 'basic', params: { realm: '' } }]],
    // A lone "name=" is a token68 by the grammar, not a parameter without a value.
    ['Basic realm=', [{ scheme: 'basic', params: {}, token68: 'realm=' }]],
    ['Bearer realm=x,service=registry.example.com', [{ scheme: 'bearer', params: { realm: 'x', service: 'registry.example.com' } }]],
    ['BEARER Realm="Mixed Case"', [{ scheme: 'bearer', params: { realm: 'Mixed Case' } }]],
    [
      '  Bearer   realm = "x" ,\tservice=y  ,, Basic realm=z ,',
      [
        { scheme: 'bearer', params: { realm: 'x', service: 'y' } },
        { scheme: 'basic', params: { realm: 'z' } },
      ],
    ],
    ['Negotiate YIIBhQYGKwYBBQUCoIIBeTCC+/a==', [{ scheme: 'negotiate', params: {}, token68: 'YIIBhQYGKwYBBQUCoIIBeTCC+/a==' }]],
    [
      'Negotiate abc= , Basic realm="x"',
      [
        { scheme: 'negotiate', params: {}, token68: 'abc=' },
        { scheme: 'basic', params: { realm: 'x' } },
      ],
    ],
    ['Basic', [{ scheme: 'basic', params: {} }]],
    [
      'Basic, Bearer realm=x',
      [
        { scheme: 'basic', params: {} },
        { scheme: 'bearer', params: { realm: 'x' } },
      ],
    ],
    [
      'Bearer __proto__=x, constructor=y',
      [{ scheme: 'bearer', params: Object.fromEntries([['__proto__', 'x'], ['constructor', 'y']]) }],
    ],
  ])('parses %j', (header, challenges) => {
    expect(parseWwwAuthenticate(header)).toStrictEqual(challenges);
  });

  it('keeps "__proto__" as an own key', () => {
    const [challenge] = parseWwwAuthenticate('Bearer __proto__="x"');
    expect(Object.hasOwn(challenge?.params ?? {}, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(challenge?.params)).toBe(Object.prototype);
  });

  it.each([
    ['', /no challenge/],
    [' , ,', /no challenge/],
    ['Bearer realm="x', /expected a token or quoted string for parameter "realm" at offset 13/],
    ['Bearer service=s, realm=', /expected a token or quoted string for parameter "realm"/],
    ['Bearer realm="x" service="y"', /expected "," at offset 17/],
    ['Bearer realm=a b', /expected ","/],
    ['Bearer realm="x", REALM="y"', /duplicate parameter "realm"/],
    ['="x"', /expected an auth scheme at offset 0/],
    ['Bearer@ realm=x', /expected a space after auth scheme "bearer"/],
    ['Bearer realm="x"\n', /expected ","/],
    ['Bearer realm="x", =y', /expected an auth scheme/],
  ])('rejects %j', (header, reason) => {
    expect(() => parseWwwAuthenticate(header)).toThrow(RegistryError);
    expect(() => parseWwwAuthenticate(header)).toThrow(reason);
    expect(() => parseWwwAuthenticate(header)).toThrow(`invalid WWW-Authenticate header ${JSON.stringify(header)}`);
  });

  it('gives back the params a header was built from', () => {
    fc.assert(
      fc.property(generatedChallenge, (challenge) => {
        expect(parseWwwAuthenticate(render(challenge))).toStrictEqual([expected(challenge)]);
      }),
    );
  });

  it('gives back every challenge of a multi-challenge header', () => {
    fc.assert(
      fc.property(fc.array(generatedChallenge, { minLength: 1, maxLength: 4 }), ows, (challenges, space) => {
        const header = challenges.map(render).join(`${space},${space}`);
        expect(parseWwwAuthenticate(header)).toStrictEqual(challenges.map(expected));
      }),
    );
  });

  it('gives back a token68', () => {
    fc.assert(
      fc.property(token, fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,20}={0,2}$/), (scheme, token68) => {
        expect(parseWwwAuthenticate(`${scheme} ${token68}`)).toStrictEqual([
          { scheme: scheme.toLowerCase(), params: {}, token68 },
        ]);
      }),
    );
  });

  it('never throws anything but RegistryError', () => {
    const headerLike = fc.string({ unit: fc.constantFrom(...'aB1 \t,="\\=/'), maxLength: 30 });
    fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), headerLike), parsesOrThrowsRegistryError));
  });
});

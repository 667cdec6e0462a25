import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from './errors.js';
import { resolveLocation, withQuery } from './location.js';

const REQUEST = 'https://r.example.com/v2/org/app/blobs/uploads/';

function resolvedOrUndefined(location: string): URL | undefined {
  try {
    return resolveLocation(location, REQUEST);
  } catch (error) {
    expect(error).toBeInstanceOf(RegistryError);
    return undefined;
  }
}

describe('resolveLocation', () => {
  it.each([
    ['/v2/org/app/blobs/uploads/0b1c?_state=abc', 'https://r.example.com/v2/org/app/blobs/uploads/0b1c?_state=abc'],
    ['0b1c', 'https://r.example.com/v2/org/app/blobs/uploads/0b1c'],
    ['https://storage.example.com/upload?sig=x%2By', 'https://storage.example.com/upload?sig=x%2By'],
    ['http://localhost:5000/v2/a/blobs/uploads/1', 'http://localhost:5000/v2/a/blobs/uploads/1'],
    ['//cdn.example.com/u', 'https://cdn.example.com/u'],
  ])('resolves %j', (location, expected) => {
    expect(resolveLocation(location, REQUEST).href).toBe(expected);
  });

  it.each([undefined, '', '  '])('rejects a missing Location (%j)', (location) => {
    expect(() => resolveLocation(location, REQUEST)).toThrow(
      expect.objectContaining({ code: 'PROTOCOL', message: `response to ${REQUEST} has no Location header` }),
    );
  });

  it.each(['http://[bad', 'javascript:alert(1)', 'file:///etc/passwd', 'data:,x'])('rejects %j', (location) => {
    expect(() => resolveLocation(location, REQUEST)).toThrow(
      expect.objectContaining({
        code: 'PROTOCOL',
        message: `Location ${JSON.stringify(location)} from ${REQUEST} is not an http(s) URL`,
      }),
    );
  });

  it('rejects an invalid request URL', () => {
    expect(() => resolveLocation('/x', 'nope')).toThrow(/invalid request URL "nope"/);
  });

  it('never throws anything but RegistryError, and always returns an http(s) URL', () => {
    fc.assert(
      fc.property(fc.option(fc.oneof(fc.string({ unit: 'binary' }), fc.webUrl(), fc.webPath()), { nil: undefined }), (location) => {
        try {
          expect(resolveLocation(location, REQUEST).protocol).toMatch(/^https?:$/);
        } catch (error) {
          expect(error).toBeInstanceOf(RegistryError);
        }
      }),
    );
  });

  it('is idempotent: resolving a resolved Location gives the same URL', () => {
    const location = fc.oneof(fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.webPath(), fc.string());
    fc.assert(
      fc.property(location, fc.webUrl(), (location, other) => {
        const resolved = resolvedOrUndefined(location);
        fc.pre(resolved !== undefined);
        expect(resolveLocation(resolved.href, other).href).toBe(resolved.href);
      }),
    );
  });
});

describe('withQuery', () => {
  it('appends parameters and keeps signed ones byte for byte', () => {
    const url = new URL('https://r.example.com/v2/a/blobs/uploads/1?_state=ab%2Bc%3D%3D~x&q=a+b#frag');
    const result = withQuery(url, { digest: 'sha256:abc' });
    expect(result.href).toBe('https://r.example.com/v2/a/blobs/uploads/1?_state=ab%2Bc%3D%3D~x&q=a+b&digest=sha256%3Aabc#frag');
    expect(result.searchParams.get('_state')).toBe('ab+c==~x');
  });

  it('replaces every existing occurrence of a parameter it sets', () => {
    const url = new URL('https://r/u?digest=old&a=1&digest=older&%64igest=encoded');
    expect(withQuery(url, { digest: 'new' }).search).toBe('?a=1&digest=new');
  });

  it('compares names as decoded, including a leading "?"', () => {
    const url = new URL('https://r/u?%3Fb=1&b=2');
    expect(withQuery(url, { b: '3' }).searchParams.getAll('?b')).toEqual(['1']);
    expect(withQuery(url, { '?b': '3' }).search).toBe('?b=2&%3Fb=3');
  });

  it('encodes names and values', () => {
    const result = withQuery(new URL('https://r/u'), { 'a&b': 'c=d e#f', '': 'empty' });
    expect(result.search).toBe('?a%26b=c%3Dd%20e%23f&=empty');
    expect(result.searchParams.get('a&b')).toBe('c=d e#f');
  });

  it('works on a URL without a query and with no params', () => {
    expect(withQuery(new URL('https://r/u'), {}).href).toBe('https://r/u');
    expect(withQuery(new URL('https://r/u?a=1'), {}).href).toBe('https://r/u?a=1');
  });

  const existing = fc.array(fc.tuple(fc.string(), fc.string()), { maxLength: 5 });
  const params = fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', '_state', 'digest')), fc.string({ unit: 'binary' }), {
    maxKeys: 4,
  });
  const urlWith = (pairs: [string, string][]) => {
    const url = new URL('https://r.example.com/v2/a/blobs/uploads/1#f');
    url.search = new URLSearchParams(pairs).toString();
    return url;
  };

  it('sets every param, keeps every other parameter and never mutates its input', () => {
    fc.assert(
      fc.property(existing, params, (pairs, added) => {
        const url = urlWith(pairs);
        const before = url.href;
        const result = withQuery(url, added);
        expect(url.href).toBe(before);
        expect(result).not.toBe(url);
        for (const [name, value] of Object.entries(added)) expect(result.searchParams.getAll(name)).toEqual([value]);
        for (const [name] of pairs) {
          if (!Object.hasOwn(added, name)) expect(result.searchParams.getAll(name)).toEqual(url.searchParams.getAll(name));
        }
        expect(result.hash).toBe(url.hash);
        expect(result.pathname).toBe(url.pathname);
      }),
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(existing, params, (pairs, added) => {
        const once = withQuery(urlWith(pairs), added);
        expect(withQuery(once, added).href).toBe(once.href);
      }),
    );
  });
});

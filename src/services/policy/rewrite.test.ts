import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../registry/errors.js';
import { parseReference } from '../registry/reference.js';
import type { NamespaceRewrite } from '../store/types.js';
import { rewriteRepository } from './rewrite.js';

/** Short components, so that any namespace plus any path stays within the 255-character name limit. */
const component = fc.stringMatching(/^[a-z0-9]{1,8}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,8}){0,2}$/);
const path = (maxLength: number) => fc.array(component, { minLength: 1, maxLength }).map((components) => components.join('/'));
const rewrite: fc.Arbitrary<NamespaceRewrite> = fc.record({
  namespace: fc.option(path(2), { nil: null }),
  flatten: fc.integer({ min: -1, max: 6 }),
});

function thrown(action: () => unknown): RegistryError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(RegistryError);
    return error as RegistryError;
  }
  throw new Error('expected a RegistryError');
}

describe('rewriteRepository', () => {
  it.each<[string, NamespaceRewrite, string]>([
    ['a/b/c', { namespace: 'mirror', flatten: 1 }, 'mirror/b/c'],
    ['a/b/c', { namespace: 'mirror', flatten: 2 }, 'mirror/c'],
    ['a/b/c', { namespace: 'mirror', flatten: -1 }, 'mirror/c'],
    ['a/b/c', { namespace: 'mirror', flatten: 0 }, 'mirror/a/b/c'],
    ['a/b/c', { namespace: null, flatten: 0 }, 'a/b/c'],
    ['a/b/c', { namespace: null, flatten: 1 }, 'b/c'],
    ['a/b/c', { namespace: null, flatten: -1 }, 'c'],
    ['a/b/c', { namespace: 'x/y', flatten: 1 }, 'x/y/b/c'],
    ['lib', { namespace: 'm', flatten: 5 }, 'm/lib'],
    ['lib', { namespace: null, flatten: -1 }, 'lib'],
  ])('rewrites %s with %j to %s', (source, options, expected) => {
    expect(rewriteRepository(source, options)).toBe(expected);
  });

  it.each(['', 'Mirror', 'mirror/', '/mirror', 'a//b', 'mirror:tag', 'mirror@sha256:abc', '-mirror', 'mirror_'])(
    'refuses namespace %j with INVALID_CONFIG',
    (namespace) => {
      const error = thrown(() => rewriteRepository('a/b', { namespace, flatten: 0 }));
      expect(error.code).toBe('INVALID_CONFIG');
      expect(error.message).toContain(`rewrite of a/b: namespace ${JSON.stringify(namespace)} is not a repository path`);
    },
  );

  it.each([-2, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses flatten %s with INVALID_CONFIG', (flatten) => {
    const error = thrown(() => rewriteRepository('a/b', { namespace: null, flatten }));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe(`rewrite of a/b: flatten ${flatten} is not -1 (keep the last component), 0 (keep all) or a positive integer`);
  });

  it.each(['', 'A/b', 'a//b', 'a/b:latest'])('refuses source %j with INVALID_REFERENCE', (source) => {
    expect(thrown(() => rewriteRepository(source, { namespace: 'm', flatten: 0 })).code).toBe('INVALID_REFERENCE');
  });

  describe('properties', () => {
    it("ends with the source's last component", () => {
      fc.assert(
        fc.property(path(5), rewrite, (source, options) => {
          expect(rewriteRepository(source, options).split('/').at(-1)).toBe(source.split('/').at(-1));
        }),
      );
    });

    it('keeps the namespace, then as many trailing source components as flatten leaves', () => {
      fc.assert(
        fc.property(path(5), rewrite, (source, options) => {
          const components = source.split('/');
          const kept = options.flatten === -1 ? 1 : Math.max(1, components.length - options.flatten);
          const prefix = options.namespace === null ? [] : options.namespace.split('/');
          expect(rewriteRepository(source, options).split('/')).toEqual([...prefix, ...components.slice(-kept)]);
        }),
      );
    });

    it('is the identity with flatten 0 and no namespace', () => {
      fc.assert(fc.property(path(5), (source) => rewriteRepository(source, { namespace: null, flatten: 0 }) === source));
    });

    it('answers a valid repository name', () => {
      fc.assert(
        fc.property(path(5), rewrite, (source, options) => {
          const result = rewriteRepository(source, options);
          expect(parseReference(`registry.example.com/${result}`).repository).toBe(result);
        }),
      );
    });

    it('throws nothing but RegistryError on arbitrary input', () => {
      fc.assert(
        fc.property(
          fc.oneof(fc.string(), path(3)),
          fc.option(fc.oneof(fc.string(), path(2)), { nil: null }),
          fc.oneof(fc.integer({ min: -3, max: 8 }), fc.double()),
          (source, namespace, flatten) => {
            try {
              rewriteRepository(source, { namespace, flatten });
            } catch (error) {
              if (!(error instanceof RegistryError)) throw error;
            }
          },
        ),
      );
    });
  });
});

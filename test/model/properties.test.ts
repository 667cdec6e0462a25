import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../src/services/registry/errors.js';
import { compileFilter } from '../../src/services/tag-filter.js';

/**
 * Repository globs (policies' `repositories` filter, compiled by compileFilter): the parser
 * property tests of src/services cover references, WWW-Authenticate, Location, Link, digests,
 * tag filters and namespace rewriting; these add repository paths, where `**` crosses `/`.
 */

const component = fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/);
const repository = fc.array(component, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('/'));
const pattern = fc.oneof(fc.string({ unit: 'binary' }), fc.stringMatching(/^[a-z0-9*?/[\]{}!().,|+^$\\-]{0,12}$/));

describe('repository globs', () => {
  it('never throw anything but RegistryError on arbitrary patterns and names, in either syntax', () => {
    fc.assert(
      fc.property(fc.array(pattern, { maxLength: 3 }), fc.array(pattern, { maxLength: 3 }), fc.constantFrom('glob' as const, 'regex' as const), fc.string({ unit: 'binary' }), (include, exclude, syntax, name) => {
        try {
          expect(typeof compileFilter({ include, exclude, syntax })(name)).toBe('boolean');
        } catch (error) {
          expect(error).toBeInstanceOf(RegistryError);
          expect((error as RegistryError).code).toBe('INVALID_CONFIG');
        }
      }),
    );
  });

  it('match a repository path written as its own glob, and only that path', () => {
    fc.assert(
      fc.property(repository, repository, (path, other) => {
        const matches = compileFilter({ include: [path], exclude: [] });
        expect(matches(path)).toBe(true);
        expect(matches(other)).toBe(other === path);
      }),
    );
  });

  it('let "**" cross "/" while "*" stays within one component', () => {
    fc.assert(
      fc.property(component, fc.array(component, { minLength: 2, maxLength: 4 }), (root, rest) => {
        const path = [root, ...rest].join('/');
        expect(compileFilter({ include: [`${root}/**`], exclude: [] })(path)).toBe(true);
        expect(compileFilter({ include: [`${root}/*`], exclude: [] })(path)).toBe(false);
      }),
    );
  });

  it('never keep an excluded path, whatever includes it', () => {
    fc.assert(
      fc.property(repository, fc.array(fc.constantFrom('**', '*/**', '**/*'), { maxLength: 2 }), (path, include) => {
        expect(compileFilter({ include, exclude: [path] })(path)).toBe(false);
      }),
    );
  });

  it('round-trip a regular expression that quotes a path: it matches exactly that path', () => {
    fc.assert(
      fc.property(repository, repository, (path, other) => {
        const quoted = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        const matches = compileFilter({ include: [quoted], exclude: [], syntax: 'regex' });
        expect(matches(path)).toBe(true);
        expect(matches(other)).toBe(other === path);
      }),
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from './registry/errors.js';
import { compileFilter, filterTags, globFilter } from './tag-filter.js';

const TAGS = ['1.0', '1.1', '1.1-rc1', '2.0', 'latest', 'dev-abc', '.hidden'];

describe('tag filters', () => {
  it('keeps every tag when nothing is included', () => {
    expect(filterTags(TAGS, globFilter([]))).toEqual(TAGS);
  });

  it('includes by glob and excludes with !glob', () => {
    expect(filterTags(TAGS, globFilter(['1.*', '!*-rc*']))).toEqual(['1.0', '1.1']);
    expect(filterTags(TAGS, globFilter(['!latest']))).toEqual(TAGS.filter((t) => t !== 'latest'));
  });

  it('matches regular expressions against the whole tag', () => {
    const filter = { include: ['\\d+\\.\\d+'], exclude: ['2\\..*'], syntax: 'regex' as const };
    expect(filterTags(TAGS, filter)).toEqual(['1.0', '1.1']);
    expect(filterTags(['v1.0', '1.0x'], filter)).toEqual([]);
  });

  it('says which regular expression is invalid', () => {
    expect(() => filterTags(TAGS, { include: ['('], exclude: [], syntax: 'regex' })).toThrow(/filter: "\(" is not a regular expression/);
  });

  it('lets ** cross / for repository paths, and * not', () => {
    expect(compileFilter({ include: ['team/**'], exclude: [] })('team/a/b')).toBe(true);
    expect(compileFilter({ include: ['team/*'], exclude: [] })('team/a/b')).toBe(false);
  });

  it('never keeps an excluded tag, and never throws but RegistryError', () => {
    fc.assert(
      fc.property(fc.array(fc.string()), fc.array(fc.string()), fc.constantFrom('glob' as const, 'regex' as const), (tags, patterns, syntax) => {
        try {
          const kept = filterTags(tags, { include: [], exclude: patterns, syntax });
          const excluded = compileFilter({ include: patterns, exclude: [], syntax });
          return patterns.length === 0 ? kept.length === tags.length : kept.every((t) => !excluded(t));
        } catch (error) {
          return error instanceof RegistryError;
        }
      }),
    );
  });
});

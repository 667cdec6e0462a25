import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from './registry/errors.js';
import { compileFilter, compileTagFilter, globFilter, tagRefusal, type TagFilter } from './tag-filter.js';

const TAGS = ['1.0', '1.1', '1.1-rc1', '2.0', 'latest', 'dev-abc', '.hidden'];

const filterTags = (tags: string[], filter: TagFilter) => tags.filter(compileTagFilter(filter));

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

describe('semver tag filters', () => {
  const VERSIONS = ['1.2.3', '1.10.0', '2.0.0-rc.1', 'v1.4.0', 'latest', '1.2', '1.2.3-alpine', '3.0.0'];
  const semver = (range: string, includePrerelease?: boolean): TagFilter => ({ ...globFilter([]), semver: { range, ...(includePrerelease === undefined ? {} : { includePrerelease }) } });

  it('keeps the versions in a range, a leading v included, and never a tag that is no version', () => {
    expect(filterTags(VERSIONS, semver('>=1.2 <2'))).toEqual(['1.2.3', '1.10.0', 'v1.4.0']);
    expect(filterTags(VERSIONS, semver('^1.4'))).toEqual(['1.10.0', 'v1.4.0']);
    expect(filterTags(VERSIONS, semver('~1.2'))).toEqual(['1.2.3']);
    expect(filterTags(VERSIONS, semver('*'))).toEqual(['1.2.3', '1.10.0', 'v1.4.0', '3.0.0']);
  });

  it('leaves prereleases (and variant suffixes) out unless asked, or named by the range', () => {
    expect(filterTags(VERSIONS, semver('>=2'))).toEqual(['3.0.0']);
    expect(filterTags(VERSIONS, semver('>=2', true))).toEqual(['2.0.0-rc.1', '3.0.0']);
    expect(filterTags(VERSIONS, semver('>=2.0.0-rc.0'))).toEqual(['2.0.0-rc.1', '3.0.0']);
    expect(filterTags(VERSIONS, semver('~1.2', true))).toEqual(['1.2.3', '1.2.3-alpine']);
  });

  it('says why a tag is left out, patterns first', () => {
    const refusal = tagRefusal({ ...globFilter(['!3.*']), semver: { range: '>=1.2 <2' } });
    expect(['latest', '1.2', '2.0.0-rc.1', '1.0.0', '3.0.0', '1.2.3-alpine', '1.10.0'].map(refusal)).toEqual([
      'notSemver',
      'notSemver',
      'outsideRange',
      'outsideRange',
      'pattern',
      'prerelease',
      undefined,
    ]);
  });

  it('takes only versions when the latest N are ranked by semver, and any tag when by creation time', () => {
    expect(filterTags(VERSIONS, { ...globFilter([]), latest: { count: 1, by: 'semver' } })).toEqual(['1.2.3', '1.10.0', 'v1.4.0', '3.0.0']);
    expect(filterTags(VERSIONS, { ...globFilter([]), latest: { count: 1, by: 'created' } })).toEqual(VERSIONS);
  });

  it('refuses a range that is none as the other patterns, with a RegistryError', () => {
    expect(() => compileTagFilter(semver('>=1 <'))).toThrow(RegistryError);
    expect(() => compileTagFilter(semver('>=1 <'))).toThrow(/filter: ">=1 <" is not a semver range/);
  });
});

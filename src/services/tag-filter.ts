import picomatch from 'picomatch';
import { RegistryError } from './registry/errors.js';
import { semverMatcher, type SemverFilter, type SemverRefusal } from './semver-tags.js';

export type { SemverFilter } from './semver-tags.js';

export interface Filter {
  /** Empty includes everything. */
  include: string[];
  exclude: string[];
}

export interface TagFilter extends Filter {
  /** Globs (`v1.*`) or regular expressions, matched against the whole tag. */
  syntax: 'glob' | 'regex';
  /** Besides the patterns: only tags that are versions in this range (semver-tags.ts says what a version is). */
  semver?: SemverFilter;
  /** Of the tags that pass the rest, only the `count` newest (tag-selection.ts). */
  latest?: LatestFilter;
}

export interface LatestFilter {
  count: number;
  /** `semver`: the highest versions (a tag that is no version is left out); `created`: the newest images, by their config's `created`. */
  by: 'semver' | 'created';
}

export type TagRefusal = 'pattern' | SemverRefusal;

export const EVERY_TAG: TagFilter = { include: [], exclude: [], syntax: 'glob' };

/** The command line's form: repeated globs, `!glob` to exclude. */
export function globFilter(patterns: readonly string[]): TagFilter {
  return {
    include: patterns.filter((p) => !p.startsWith('!')),
    exclude: patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1)),
    syntax: 'glob',
  };
}

/** A matcher for names: tags, or repository paths (`**` crosses `/`). */
export function compileFilter(filter: Filter & { syntax?: 'glob' | 'regex' }): (name: string) => boolean {
  const matcher = (patterns: string[]) => (filter.syntax === 'regex' ? regexMatcher(patterns) : globMatcher(patterns));
  const included = filter.include.length > 0 ? matcher(filter.include) : () => true;
  const excluded = filter.exclude.length > 0 ? matcher(filter.exclude) : () => false;
  return (name) => included(name) && !excluded(name);
}

/** Latest N by semver ranks versions only, and prereleases only when a semver filter takes them. */
const ANY_VERSION: SemverFilter = { range: '*' };

/**
 * Why one tag is left out by the patterns and the semver range, or undefined when it passes
 * them. "Latest N" is not judged here: it needs every tag (tag-selection.ts).
 */
export function tagRefusal(filter: TagFilter): (tag: string) => TagRefusal | undefined {
  const matches = compileFilter(filter);
  const versions = filter.semver ?? (filter.latest?.by === 'semver' ? ANY_VERSION : undefined);
  const outside = versions && semverMatcher(versions);
  return (tag) => (matches(tag) ? outside?.(tag) : 'pattern');
}

export function compileTagFilter(filter: TagFilter): (tag: string) => boolean {
  const refusal = tagRefusal(filter);
  return (tag) => refusal(tag) === undefined;
}

function globMatcher(patterns: string[]): (name: string) => boolean {
  for (const pattern of patterns) if (pattern === '') throw new RegistryError('INVALID_CONFIG', 'filter: a glob cannot be empty');
  return picomatch(patterns, { dot: true });
}

/** A regex pattern as filters match it: against the whole name. Throws SyntaxError for one that is not a regular expression. */
export function wholeNameExpression(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'u');
}

function regexMatcher(patterns: string[]): (name: string) => boolean {
  const expressions = patterns.map((pattern) => {
    try {
      return wholeNameExpression(pattern);
    } catch (error) {
      throw new RegistryError('INVALID_CONFIG', `filter: ${JSON.stringify(pattern)} is not a regular expression (${(error as Error).message})`);
    }
  });
  return (name) => expressions.some((expression) => expression.test(name));
}

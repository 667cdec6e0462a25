import picomatch from 'picomatch';
import { RegistryError } from './registry/errors.js';

export interface Filter {
  /** Empty includes everything. */
  include: string[];
  exclude: string[];
}

export interface TagFilter extends Filter {
  /** Globs (`v1.*`) or regular expressions, matched against the whole tag. */
  syntax: 'glob' | 'regex';
}

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

export function filterTags(tags: readonly string[], filter: TagFilter): string[] {
  const matches = compileFilter(filter);
  return tags.filter(matches);
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

import picomatch from 'picomatch';

/**
 * Keeps the tags matching any include glob (all when there is none) and no `!exclude` glob.
 */
export function filterTags(tags: readonly string[], patterns: readonly string[]): string[] {
  const includes = patterns.filter((p) => !p.startsWith('!'));
  const excludes = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
  const included = includes.length > 0 ? picomatch(includes, { dot: true }) : () => true;
  const excluded = excludes.length > 0 ? picomatch(excludes, { dot: true }) : () => false;
  return tags.filter((tag) => included(tag) && !excluded(tag));
}

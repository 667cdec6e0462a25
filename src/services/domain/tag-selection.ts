import { isSemverRange } from '../semver-tags.js';
import type { LatestFilter, SemverFilter, TagFilter } from '../tag-filter.js';
import { InvalidInputError } from './errors.js';

/**
 * The rules for a tag filter's semver range and "latest N" (the range's also for `ferry copy
 * --semver`): caught when written, since at run time a bad range would fail every run.
 */

export function checkTagSelection({ semver, latest }: Pick<TagFilter, 'semver' | 'latest'>): Pick<TagFilter, 'semver' | 'latest'> {
  return {
    ...(semver === undefined ? {} : { semver: checkSemverFilter(semver, 'tags.semver') }),
    ...(latest === undefined ? {} : { latest: checkLatestFilter(latest, 'tags.latest') }),
  };
}

export function checkSemverFilter({ range, includePrerelease }: SemverFilter, field: string): SemverFilter {
  if (range.trim() === '') throw new InvalidInputError(`${field}.range`, 'must not be empty (* takes every version)');
  if (!isSemverRange(range)) throw new InvalidInputError(`${field}.range`, `${JSON.stringify(range)} is not a semver range (such as ">=1.2 <2", "^3" or "~1.4")`);
  return { range, includePrerelease: includePrerelease ?? false };
}

function checkLatestFilter({ count, by }: LatestFilter, field: string): LatestFilter {
  if (!Number.isSafeInteger(count) || count < 1) throw new InvalidInputError(`${field}.count`, `${count} is not a whole number of at least 1`);
  if (by !== 'semver' && by !== 'created') throw new InvalidInputError(`${field}.by`, `${JSON.stringify(by)} is neither semver nor created`);
  return { count, by };
}

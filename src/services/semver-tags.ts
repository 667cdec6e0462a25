import { createRequire } from 'node:module';
import type { SemVer } from 'semver';
import { RegistryError } from './registry/errors.js';

const require = createRequire(import.meta.url);
let loaded: typeof import('semver') | undefined;

/**
 * semver is 47 files: it loads the first time a filter or an order asks for versions, not with
 * every `ferry copy` (a copy without --semver or --latest never does).
 */
function semver(): typeof import('semver') {
  loaded ??= require('semver') as typeof import('semver');
  return loaded;
}

/**
 * Tags read as semantic versions, for semver ranges and "latest N by semver".
 *
 * A tag is a version when it is a whole `MAJOR.MINOR.PATCH`, with an optional leading `v` and
 * an optional `-prerelease` (`1.2.3`, `v1.4.0`, `2.0.0-rc.1`). `1.2` and `1` are not versions:
 * they are usually moving tags that follow the newest patch, and reading `1.2` as `1.2.0`
 * would rank it as the oldest 1.2 and let `<1.2.1` select the image that is really 1.2.9.
 * A variant suffix reads as a prerelease (`1.2.3-alpine`), so it is left out unless
 * prereleases are included.
 */

export interface SemverFilter {
  /** An npm-style range: `>=1.2 <2`, `^3`, `~1.4`, `1.x || >=3`. */
  range: string;
  /** Prereleases count too (`2.0.0-rc.1` in `>=1`); without it only a range naming a prerelease of the same version takes one, as npm reads ranges. */
  includePrerelease?: boolean;
}

export type SemverRefusal = 'notSemver' | 'prerelease' | 'outsideRange';

export function versionOf(tag: string): SemVer | undefined {
  return semver().parse(tag) ?? undefined;
}

export function isSemverRange(range: string): boolean {
  return semver().validRange(range) !== null;
}

/** Why a tag is outside the filter, or undefined when it is in. */
export function semverMatcher(filter: SemverFilter): (tag: string) => SemverRefusal | undefined {
  if (!isSemverRange(filter.range)) throw new RegistryError('INVALID_CONFIG', `filter: ${JSON.stringify(filter.range)} is not a semver range`);
  const withPrereleases = new (semver().Range)(filter.range, { includePrerelease: true });
  const range = filter.includePrerelease ? withPrereleases : new (semver().Range)(filter.range);
  return (tag) => {
    const version = versionOf(tag);
    if (!version) return 'notSemver';
    if (range.test(version)) return undefined;
    return version.prerelease.length > 0 && withPrereleases.test(version) ? 'prerelease' : 'outsideRange';
  };
}

/** Newest first; equal versions (`1.2.3` and `v1.2.3`) by tag, so the order never depends on the listing's. */
export function newestVersionFirst(a: string, b: string): number {
  return semver().rcompare(versionOf(a)!, versionOf(b)!) || a.localeCompare(b);
}

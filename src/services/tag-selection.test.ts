import { describe, expect, it } from 'vitest';
import { globFilter, type TagFilter } from './tag-filter.js';
import { describeLeftOut, selectTags, type CreationTimes } from './tag-selection.js';

const TAGS = ['1.2.3', '1.10.0', '2.0.0-rc.1', 'v1.4.0', 'latest', 'dev'];

/** Creation times from a table, recording which tags were asked for. */
function times(table: Record<string, number | undefined>): CreationTimes & { asked: string[][] } {
  const asked: string[][] = [];
  return Object.assign(async (tags: string[]) => {
    asked.push(tags);
    return tags.map((tag) => table[tag]);
  }, { asked });
}

const noTimes = times({});
const filter = (overrides: Partial<TagFilter>): TagFilter => ({ ...globFilter([]), ...overrides });

describe('tag selection', () => {
  it('keeps the N highest versions, newest first, 1.10.0 above 1.2.3', async () => {
    const selection = await selectTags(TAGS, filter({ latest: { count: 2, by: 'semver' } }), noTimes);
    expect(selection).toEqual({ listed: 6, kept: ['1.10.0', 'v1.4.0'], leftOut: { notSemver: 2, prerelease: 1, beyondLatest: 1 } });
    expect(describeLeftOut(selection)).toBe('2 not semver, 1 prerelease, 1 beyond the latest 2');
    expect(noTimes.asked).toEqual([]);
  });

  it('ranks prereleases among versions when the semver filter includes them', async () => {
    const selection = await selectTags(TAGS, filter({ semver: { range: '*', includePrerelease: true }, latest: { count: 1, by: 'semver' } }), noTimes);
    expect(selection.kept).toEqual(['2.0.0-rc.1']);
  });

  it('asks creation times only of the tags the patterns and range kept, and only when they are more than N, kept then as listed', async () => {
    const created = times({ 'v1.4.0': 300, '1.2.3': 200, '1.10.0': 100, latest: 400 });
    const ranged = await selectTags(TAGS, filter({ semver: { range: '>=1.2 <2' }, latest: { count: 2, by: 'created' } }), created);
    expect(ranged).toEqual({ listed: 6, kept: ['v1.4.0', '1.2.3'], leftOut: { notSemver: 2, outsideRange: 1, beyondLatest: 1 } });
    expect(created.asked).toEqual([['1.2.3', '1.10.0', 'v1.4.0']]);

    const few = await selectTags(TAGS, filter({ include: ['1.*'], latest: { count: 2, by: 'created' } }), created);
    expect(few.kept).toEqual(['1.2.3', '1.10.0']);
    expect(created.asked).toHaveLength(1);
  });

  it('ranks an image without a creation time as the oldest, and equal times by tag', async () => {
    const created = times({ '1.2.3': 100, '1.10.0': 100, latest: 50 });
    const selection = await selectTags(TAGS, filter({ latest: { count: 3, by: 'created' } }), created);
    expect(selection.kept).toEqual(['1.10.0', '1.2.3', 'latest']);
    expect(describeLeftOut(selection)).toBe('3 beyond the latest 3');
  });

  it('says nothing was left out when nothing was', async () => {
    const selection = await selectTags(TAGS, globFilter([]), noTimes);
    expect(selection).toEqual({ listed: 6, kept: TAGS, leftOut: {} });
    expect(describeLeftOut(selection)).toBe('');
  });
});

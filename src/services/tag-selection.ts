import { newestVersionFirst } from './semver-tags.js';
import { tagRefusal, type LatestFilter, type TagFilter, type TagRefusal } from './tag-filter.js';

export type LeftOutReason = TagRefusal | 'beyondLatest';

/** What a tag filter made of a repository's tags: the job's tags, and for the dry run and the log, what was left out. */
export interface TagSelection {
  listed: number;
  /** In the listing's order, but newest first (and so copied first) when "latest N" left some out. */
  kept: string[];
  /** Tags left out, counted under the first filter that refused them: patterns, then semver, then latest N. */
  leftOut: Partial<Record<LeftOutReason, number>>;
}

/** When the images `tags` point at were created (ms since the epoch), in the same order; undefined where unknown. */
export type CreationTimes = (tags: string[]) => Promise<Array<number | undefined>>;

export async function selectTags(tags: readonly string[], filter: TagFilter, creationTimes: CreationTimes): Promise<TagSelection> {
  const leftOut: TagSelection['leftOut'] = {};
  const leave = (reason: LeftOutReason) => (leftOut[reason] = (leftOut[reason] ?? 0) + 1);
  const refusal = tagRefusal(filter);
  const passed = tags.filter((tag) => {
    const reason = refusal(tag);
    if (reason) leave(reason);
    return reason === undefined;
  });
  const kept = filter.latest ? await newest(passed, filter.latest, creationTimes) : passed;
  if (kept.length < passed.length) leftOut.beyondLatest = passed.length - kept.length;
  return { listed: tags.length, kept, leftOut };
}

/** The `count` newest, newest first; all, as listed, when they are no more: creation times cost requests. */
async function newest(tags: string[], { count, by }: LatestFilter, creationTimes: CreationTimes): Promise<string[]> {
  if (tags.length <= count) return tags;
  const ranked = by === 'semver' ? [...tags].sort(newestVersionFirst) : await newestCreatedFirst(tags, creationTimes);
  return ranked.slice(0, count);
}

/** An image without a creation time ranks as the oldest; ties go by tag, so the order never depends on the listing's. */
async function newestCreatedFirst(tags: string[], creationTimes: CreationTimes): Promise<string[]> {
  const times = await creationTimes(tags);
  const dated = tags.map((tag, i) => ({ tag, time: times[i] ?? -Infinity }));
  return dated.sort((a, b) => (a.time === b.time ? a.tag.localeCompare(b.tag) : b.time - a.time)).map(({ tag }) => tag);
}

const LEFT_OUT: Record<LeftOutReason, (n: number, selection: TagSelection) => string> = {
  pattern: (n) => `${n} by pattern`,
  notSemver: (n) => `${n} not semver`,
  prerelease: (n) => `${n} prerelease${n === 1 ? '' : 's'}`,
  outsideRange: (n) => `${n} outside the semver range`,
  beyondLatest: (n, selection) => `${n} beyond the latest ${selection.kept.length}`,
};

/** `2 by pattern, 1 prerelease, 3 beyond the latest 2`; empty when nothing was left out. */
export function describeLeftOut(selection: TagSelection): string {
  return (Object.keys(LEFT_OUT) as LeftOutReason[])
    .filter((reason) => selection.leftOut[reason])
    .map((reason) => LEFT_OUT[reason](selection.leftOut[reason]!, selection))
    .join(', ');
}

import { listTags } from '../services/registry/tags.js';
import type { CommandIO } from './io.js';
import { withRepository, type ReadOptions } from './registry-access.js';
import { UsageError } from './usage.js';

/** `ferry ls REPO`: one tag a line, sorted (registries list them in no promised order). */
export async function listTagsCommand(input: string, options: ReadOptions, io: CommandIO): Promise<number> {
  return withRepository(input, options, io, async (repo, reference) => {
    if (reference.tag || reference.digest) throw new UsageError(`ls takes a repository, not a tag or digest: ${input}`);
    for (const tag of (await listTags(repo)).sort()) io.stdout.write(`${tag}\n`);
    return 0;
  });
}

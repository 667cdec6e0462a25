import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { toPromise } from 'xstate';
import { DEFAULT_RETRY } from '../machines/retry.js';
import { REPLICATION_DEFAULTS, type ReplicationInput } from '../machines/replication.js';
import { jobPhase, jobStatus } from '../machines/status.js';
import type { SignatureRequirement, WorkItem } from '../actors/types.js';
import { BlobLocator } from '../services/blob-locator.js';
import { Cleanups } from '../services/cleanups.js';
import { InvalidInputError } from '../services/domain/errors.js';
import { checkPlatforms } from '../services/domain/policy.js';
import { checkRequestsPerSecond } from '../services/domain/registry.js';
import { checkSignatureRequirement, DEFAULT_REFERRERS, parseReferrers } from '../services/domain/referrers.js';
import { checkSemverFilter } from '../services/domain/tag-selection.js';
import { createReplication } from '../services/interpreter.js';
import { createLogger } from '../services/logger.js';
import { logFormat } from './options.js';
import { parseReference, type Reference } from '../services/registry/reference.js';
import { Registries } from '../services/registry/registries.js';
import { globFilter, type TagFilter } from '../services/tag-filter.js';
import { createReporter } from './report.js';
import { registryResolver } from './registry-options.js';
import type { CommandIO } from './io.js';
import { positiveInteger, UsageError } from './usage.js';

export const COPY_USAGE = `Usage: ferry copy SRC DST [options]

Copies a repository, or one tag or digest, between registries.
  SRC, DST   registry/repository[:tag|@digest]; a SRC without tag or digest copies every tag
             (or those matching --tags) to the same tags in DST

Options:
  --tags GLOB           copy only matching tags; repeat it; !GLOB excludes
  --semver RANGE        copy only tags that are versions in RANGE (">=1.2 <2", "^3", "~1.4"):
                        1.2.3 and v1.2.3 are versions, 1.2 and latest are not
  --prerelease          let --semver take prereleases (2.0.0-rc.1, 1.2.3-alpine) too
  --latest N            copy only the N newest of the tags the other filters keep
  --latest-by HOW       semver (default): the highest versions; created: the newest images,
                        by their configs' creation time (fetched for the tags kept so far)
  --platform LIST       os/arch[/variant][,...]: copy only these platforms of multi-arch images
  --concurrency N       blobs copied in parallel (default ${REPLICATION_DEFAULTS.blobConcurrency})
  --batch N             tags planned, copied and pushed together (default ${REPLICATION_DEFAULTS.batchSize})
  --retries N           attempts after transient failures before giving up (default ${DEFAULT_RETRY.maxAttempts})
  --src-creds U:P       source credentials (or FERRY_SRC_CREDS; default: ~/.docker/config.json)
  --dest-creds U:P      destination credentials (or FERRY_DEST_CREDS)
  --src-insecure        skip TLS verification and allow plain HTTP for the source
  --dest-insecure       the same for the destination
  --src-ca FILE         PEM CA bundle to trust for the source
  --dest-ca FILE        the same for the destination
  --limit-rate KIB      blob bandwidth for the job, in KiB/s
  --src-rate N          at most N requests per second to the source (429s slow ferry down further)
  --dest-rate N         the same for the destination
  --referrers WHICH     signatures, SBOMs and attestations copied with each image: all (default),
                        none, or artifact types separated by commas (application/spdx+json,...)
  --require-signature KEY.pub
                        copy only images carrying a cosign signature that verifies with this
                        public key (ECDSA P-256); the others are reported as refused
  --dry-run             print the plan (tags, referrers, blobs, bytes) and write nothing
  --log-format FORMAT   text (default) or json (pino lines on stdout)
  --inspect             run the copy under the web console (its address is printed) and send
                        the job's inspection stream to Stately's inspector (ferry stately-inspector)

Exit codes: 0 finished, 1 the job failed, or a tag failed or was refused, 2 bad usage,
130 stopped (Ctrl-C).`;

/** Cancelling an upload session takes one request; a registry slower than this expires it itself. */
const CLEANUP_WAIT_MS = 5_000;

export async function copyCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      tags: { type: 'string', multiple: true },
      semver: { type: 'string' },
      prerelease: { type: 'boolean' },
      latest: { type: 'string' },
      'latest-by': { type: 'string' },
      platform: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      batch: { type: 'string' },
      retries: { type: 'string' },
      'src-creds': { type: 'string' },
      'dest-creds': { type: 'string' },
      'src-insecure': { type: 'boolean' },
      'dest-insecure': { type: 'boolean' },
      'src-ca': { type: 'string' },
      'dest-ca': { type: 'string' },
      'dry-run': { type: 'boolean' },
      referrers: { type: 'string' },
      'require-signature': { type: 'string' },
      'limit-rate': { type: 'string' },
      'src-rate': { type: 'string' },
      'dest-rate': { type: 'string' },
      'log-format': { type: 'string' },
      inspect: { type: 'boolean' },
    },
  });
  if (positionals.length !== 2) throw new UsageError(`copy takes SRC and DST, got ${positionals.length} argument(s)`);
  const format = logFormat(values['log-format']);

  const source = parseReference(positionals[0]!);
  const destination = parseReference(positionals[1]!);
  const input: ReplicationInput = {
    source: { registry: source.registry, repository: source.repository },
    destination: { registry: destination.registry, repository: destination.repository },
    ...workItems(source, destination, values.tags !== undefined || values.semver !== undefined || values.latest !== undefined),
    tagFilter: tagFilterOption(values),
    platforms: platformOption(values.platform ?? []),
    batchSize: positiveInteger(values.batch, '--batch', REPLICATION_DEFAULTS.batchSize),
    blobConcurrency: positiveInteger(values.concurrency, '--concurrency', REPLICATION_DEFAULTS.blobConcurrency),
    retry: { ...DEFAULT_RETRY, maxAttempts: positiveInteger(values.retries, '--retries', DEFAULT_RETRY.maxAttempts) },
    dryRun: values['dry-run'] ?? false,
    override: true,
    bandwidthKiBps: values['limit-rate'] === undefined ? null : positiveInteger(values['limit-rate'], '--limit-rate', 0),
    referrers: values.referrers === undefined ? DEFAULT_REFERRERS : usage('--referrers', () => parseReferrers(values.referrers!)),
    ...(values['require-signature'] ? { requireSignature: await signatureRequirement(values['require-signature']) } : {}),
  };

  const logger = createLogger(format, io.stdout);
  const resolve = registryResolver([
    { registry: input.source.registry, credentials: values['src-creds'] ?? io.env.FERRY_SRC_CREDS, insecure: values['src-insecure'] ?? false, caFile: values['src-ca'], rate: rateOption(values['src-rate'], '--src-rate') },
    { registry: input.destination.registry, credentials: values['dest-creds'] ?? io.env.FERRY_DEST_CREDS, insecure: values['dest-insecure'] ?? false, caFile: values['dest-ca'], rate: rateOption(values['dest-rate'], '--dest-rate') },
  ]);
  if (values.inspect) {
    const { copyWithConsole } = await import('./copy-console.js');
    return copyWithConsole(input, resolve, io, logger);
  }
  const registries = new Registries(resolve);
  const reporter = createReporter({ format, stdout: io.stdout, stderr: io.stderr, logger, dryRun: input.dryRun });
  const cleanups = new Cleanups();
  const actor = createReplication(input, { registries, locator: new BlobLocator(), logger, cleanups }, { onEvent: reporter.event });
  actor.subscribe((snapshot) => reporter.status(jobStatus(snapshot), jobPhase(snapshot), snapshot.context));
  let stopped = false;
  void io.interrupted.then(() => {
    stopped = true;
    actor.send({ type: 'STOP' });
  });
  reporter.start(input);
  actor.start();
  actor.send({ type: 'START' });
  try {
    await toPromise(actor);
  } finally {
    // A stopped job's transfers cancel their upload sessions after the job has ended.
    await cleanups.settled(CLEANUP_WAIT_MS);
    await registries.close();
  }
  const snapshot = actor.getSnapshot();
  const status = jobStatus(snapshot);
  reporter.finish(status, snapshot.context);
  const { tagsRefused, tagsFailed } = snapshot.context.progress;
  if (status === 'finished') return tagsRefused > 0 || tagsFailed > 0 ? 1 : 0;
  if (status === 'stopped' && stopped) return 130;
  return 1;
}

/** The key file, read and checked before the job starts: a wrong file is bad usage, not a failed job. */
async function signatureRequirement(file: string): Promise<SignatureRequirement> {
  let key: string;
  try {
    key = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--require-signature: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return usage('--require-signature', () => checkSignatureRequirement({ key, source: file }));
}

/** A domain rule broken on the command line is bad usage, worded after the option. */
function usage<T>(option: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof InvalidInputError) throw new UsageError(`${option} ${error.problem}`);
    throw error;
  }
}

/** What to copy when SRC names a tag or digest; undefined copies every (filtered) tag. */
function workItems(source: Reference, destination: Reference, filtered: boolean): { items?: WorkItem[] } {
  if (destination.digest) throw new UsageError('DST cannot name a digest: the digest is the source content\'s');
  const reference = source.digest ?? source.tag;
  if (!reference) {
    if (destination.tag) throw new UsageError('DST names a tag, so SRC must name one tag or digest too');
    return {};
  }
  if (filtered) throw new UsageError('--tags, --semver and --latest filter a whole repository: SRC must not name a tag or digest');
  const sourceTag = source.digest && source.tag ? { sourceTag: source.tag } : {};
  return { items: [{ source: reference, target: destination.tag ?? source.tag ?? reference, ...sourceTag }] };
}

type TagOptions = { tags?: string[]; semver?: string; prerelease?: boolean; latest?: string; 'latest-by'?: string };

/** --tags, --semver and --latest as one filter, the semver range checked by the rule policies follow. */
function tagFilterOption(values: TagOptions): TagFilter {
  const filter: TagFilter = globFilter(values.tags ?? []);
  if (values.prerelease && values.semver === undefined) throw new UsageError('--prerelease widens --semver: give --semver RANGE too (* takes every version)');
  if (values.semver !== undefined) filter.semver = usage('--semver', () => checkSemverFilter({ range: values.semver!, includePrerelease: values.prerelease ?? false }, 'semver'));
  const by = values['latest-by'];
  if (by !== undefined && values.latest === undefined) throw new UsageError('--latest-by orders --latest: give --latest N too');
  if (by !== undefined && by !== 'semver' && by !== 'created') throw new UsageError(`--latest-by takes semver or created, not "${by}"`);
  if (values.latest !== undefined) filter.latest = { count: positiveInteger(values.latest, '--latest', 0), by: by ?? 'semver' };
  return filter;
}

/** Requests per second, checked by the rule registries follow. */
function rateOption(value: string | undefined, option: string): number | undefined {
  return value === undefined ? undefined : usage(option, () => checkRequestsPerSecond(Number(value)));
}

/** Repeated or comma-separated, checked by the rule policies follow. */
function platformOption(values: string[]): string[] {
  const platforms = values.flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean);
  return usage('--platform', () => checkPlatforms(platforms));
}

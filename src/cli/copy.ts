import { readFile } from 'node:fs/promises';
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
import { commandLogger, logFormat, type LogOptions } from './options.js';
import { parseReference, type Reference } from '../services/registry/reference.js';
import { Registries } from '../services/registry/registries.js';
import { globFilter, type TagFilter } from '../services/tag-filter.js';
import { createReporter } from './report.js';
import { credentialsOption, registryResolver } from './registry-options.js';
import type { CommandIO } from './io.js';
import { positiveInteger, seconds, UsageError } from './usage.js';

/** Cancelling an upload session takes one request; a registry slower than this expires it itself. */
const CLEANUP_WAIT_MS = 5_000;

export interface CopyOptions extends LogOptions {
  tags?: string[];
  semver?: string;
  prerelease?: boolean;
  latest?: string;
  latestBy?: string;
  platform?: string[];
  concurrency?: string;
  batch?: string;
  inFlight?: string;
  retries?: string;
  srcCreds?: string;
  destCreds?: string;
  srcInsecure?: boolean;
  destInsecure?: boolean;
  srcCa?: string;
  destCa?: string;
  dryRun?: boolean;
  referrers?: string;
  requireSignature?: string;
  limitRate?: string;
  srcRate?: string;
  destRate?: string;
  progress?: string;
  inspect?: boolean;
}

/** Seconds between progress lines when stdout is not a terminal. */
const PROGRESS_SECONDS = 10;

export async function copyCommand([src, dst]: string[], values: CopyOptions, io: CommandIO): Promise<number> {
  const format = logFormat(values.logFormat);
  const progressEveryMs = seconds(values.progress, '--progress', PROGRESS_SECONDS) * 1000;
  const source = parseReference(src!);
  const destination = parseReference(dst!);
  const input: ReplicationInput = {
    source: { registry: source.registry, repository: source.repository },
    destination: { registry: destination.registry, repository: destination.repository },
    ...workItems(source, destination, values.tags !== undefined || values.semver !== undefined || values.latest !== undefined),
    tagFilter: tagFilterOption(values),
    platforms: platformOption(values.platform ?? []),
    batchSize: positiveInteger(values.batch, '--batch', REPLICATION_DEFAULTS.batchSize),
    batchesInFlight: positiveInteger(values.inFlight, '--in-flight', REPLICATION_DEFAULTS.batchesInFlight),
    blobConcurrency: positiveInteger(values.concurrency, '--concurrency', REPLICATION_DEFAULTS.blobConcurrency),
    retry: { ...DEFAULT_RETRY, maxAttempts: positiveInteger(values.retries, '--retries', DEFAULT_RETRY.maxAttempts) },
    dryRun: values.dryRun ?? false,
    override: true,
    bandwidthKiBps: values.limitRate === undefined ? null : positiveInteger(values.limitRate, '--limit-rate', 0),
    referrers: values.referrers === undefined ? DEFAULT_REFERRERS : usage('--referrers', () => parseReferrers(values.referrers!)),
    ...(values.requireSignature ? { requireSignature: await signatureRequirement(values.requireSignature) } : {}),
  };

  const logger = commandLogger(values, io.stdout);
  const resolve = registryResolver([
    { registry: input.source.registry, ...credentialsOption(values.srcCreds, '--src-creds', io.env, 'FERRY_SRC_CREDS'), insecure: values.srcInsecure ?? false, caFile: values.srcCa, rate: rateOption(values.srcRate, '--src-rate') },
    { registry: input.destination.registry, ...credentialsOption(values.destCreds, '--dest-creds', io.env, 'FERRY_DEST_CREDS'), insecure: values.destInsecure ?? false, caFile: values.destCa, rate: rateOption(values.destRate, '--dest-rate') },
  ]);
  if (values.inspect) {
    const { copyWithConsole } = await import('./copy-console.js');
    return copyWithConsole(input, resolve, io, logger);
  }
  const registries = new Registries(resolve);
  const reporter = await createReporter({ format, stdout: io.stdout, stderr: io.stderr, logger, dryRun: input.dryRun, progressEveryMs });
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

type TagOptions = Pick<CopyOptions, 'tags' | 'semver' | 'prerelease' | 'latest' | 'latestBy'>;

/** --tags, --semver and --latest as one filter, the semver range checked by the rule policies follow. */
function tagFilterOption(values: TagOptions): TagFilter {
  const filter: TagFilter = globFilter(values.tags ?? []);
  if (values.prerelease && values.semver === undefined) throw new UsageError('--prerelease widens --semver: give --semver RANGE too (* takes every version)');
  if (values.semver !== undefined) filter.semver = usage('--semver', () => checkSemverFilter({ range: values.semver!, includePrerelease: values.prerelease ?? false }, 'semver'));
  const by = values.latestBy;
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

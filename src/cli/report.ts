import type cliProgress from 'cli-progress';
import type { Logger } from 'pino';
import type { ReplicationContext, ReplicationInput, ReplicationProgress } from '../machines/replication.js';
import type { JobStatus } from '../machines/status.js';
import type { JobEvent } from '../services/interpreter.js';
import type { LogFormat } from '../services/logger.js';
import { describeLeftOut } from '../services/tag-selection.js';
import { count, formatBytes, formatDuration } from './format.js';

export interface Reporter {
  start(input: ReplicationInput): void;
  event(event: JobEvent): void;
  status(status: JobStatus, phase: string | undefined, context: ReplicationContext): void;
  finish(status: JobStatus, context: ReplicationContext): void;
}

interface ReporterOptions {
  format: LogFormat;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  logger: Logger;
  dryRun: boolean;
  /** Off a terminal, a progress line this often (0: none). */
  progressEveryMs: number;
}

/**
 * What `ferry copy` shows: a line per tag and the outcome; on a terminal, bars for the whole
 * job and each blob in flight; with `--log-format json`, the same as pino records. The bars'
 * library (and its string-width and ANSI helpers) loads only for a terminal.
 */
export async function createReporter(options: ReporterOptions): Promise<Reporter> {
  if (options.format === 'json') return jsonReporter(options.logger);
  const bars = options.stdout.isTTY ? progressBars((await import('cli-progress')).default, options.stdout as NodeJS.WriteStream) : undefined;
  return textReporter(options, bars);
}

function progressBars(library: typeof cliProgress, stream: NodeJS.WriteStream): cliProgress.MultiBar {
  return new library.MultiBar(
    { format: ' {label} [{bar}] {detail}', barsize: 24, hideCursor: true, clearOnComplete: true, stream, autopadding: true },
    library.Presets.shades_classic,
  );
}

function jsonReporter(logger: Logger): Reporter {
  let last: string | undefined;
  return {
    start: (input) => logger.info({ source: input.source, destination: input.destination, dryRun: input.dryRun }, 'job started'),
    event: (event) => {
      if (event.type === 'blob.progress') logger.debug(event, event.type);
      else if (event.type === 'batch.retrying') logger.warn(event, event.type);
      else if (event.type === 'tag.planned') logger.info({ ...event.plan, type: event.type }, event.type);
      else logger.info(event, event.type);
    },
    status: (status, phase, context) => {
      const key = `${status}/${phase ?? ''}`;
      if (key === last) return;
      last = key;
      if (status === 'retrying') logger.warn({ status, attempt: context.attempt, retryAt: context.retryAt, error: context.error }, 'retrying');
      else logger.info({ status, phase }, 'status');
    },
    finish: (status, context) => {
      const fields = { status, progress: context.progress, ...(context.error ? { error: context.error } : {}) };
      if (status === 'finished') logger.info(fields, 'job finished');
      else logger.error(fields, `job ${status}`);
    },
  };
}

function textReporter({ stdout, stderr, dryRun, progressEveryMs }: ReporterOptions, bars: cliProgress.MultiBar | undefined): Reporter {
  const started = Date.now();
  const overall = bars?.create(1, 0, { label: 'tags ', detail: '' });
  const blobBars = new Map<string, cliProgress.SingleBar>();
  const inFlight = new Map<string, number>();
  let bytesDone = 0;
  let blobsDone = 0;
  let tags = { done: 0, total: 0 };
  const bytes = () => bytesDone + [...inFlight.values()].reduce((sum, n) => sum + n, 0);
  const drawOverall = () => {
    overall?.setTotal(Math.max(1, tags.total));
    overall?.update(tags.done, { detail: `${tags.done}/${tags.total} tags, ${formatBytes(bytes())}` });
  };
  const planned = new Map<string, number>();
  let plannedTags = 0;
  let plannedReferrers = 0;
  const failedTags: string[] = [];
  /** What each target tag holds, to name a referrer's subject only when it is not the image itself. */
  const images = new Map<string, string>();
  let lastRetry: number | undefined;
  const line = (text: string) => (bars ? bars.log(`${text}\n`) : stdout.write(`${text}\n`));
  // Logs and CI capture no bars: a line now and then says the job is alive and how far it got.
  const ticker = !bars && progressEveryMs > 0
    ? setInterval(() => line(`progress: ${tags.done}/${tags.total} tags, ${count(blobsDone, 'blob')}, ${formatBytes(bytes())}`), progressEveryMs).unref()
    : undefined;

  return {
    start: (input) => line(`${dryRun ? 'planning' : 'copying'} ${input.source.registry}/${input.source.repository} -> ${input.destination.registry}/${input.destination.repository}`),
    event: (event) => {
      switch (event.type) {
        case 'tag.copied': {
          images.set(event.item.target, event.digest);
          const filtered = event.digest !== event.sourceDigest ? ` (platforms filtered: differs from source ${event.sourceDigest})` : '';
          line(`copied     ${event.item.target}  ${event.digest}${filtered}`);
          break;
        }
        case 'tag.unchanged':
          images.set(event.item.target, event.digest);
          line(`unchanged  ${event.item.target}  ${event.digest}`);
          break;
        case 'tag.failed':
          failedTags.push(event.item.target);
          line(`failed     ${event.item.target}  ${event.sourceDigest ?? '-'}  ${event.error.message}`);
          break;
        case 'tag.refused':
          line(`refused    ${event.item.target}  ${event.sourceDigest}  ${event.reason}`);
          break;
        case 'referrer.copied':
          line(`referrer   ${event.item.target}  ${event.digest}  ${event.artifactType ?? 'untyped'}${of(event.subject, images.get(event.item.target))}`);
          break;
        case 'tag.planned': {
          const { plan } = event;
          if (plan.manifests.length > 0) plannedTags += 1;
          for (const blob of plan.blobs) if (plan.missing.includes(blob.digest)) planned.set(blob.digest, blob.size);
          const referrers = plan.referrers.filter((r) => r.subject !== undefined);
          plannedReferrers += referrers.length;
          const what = plan.manifests.length > 0 ? 'to copy   ' : 'referrers ';
          line(`${what} ${plan.item.target}  ${plan.targetDigest}  ${plan.missing.length} of ${count(plan.blobs.length, 'blob')} missing (${formatBytes(plan.missingBytes)})`);
          for (const referrer of referrers) {
            const cosign = referrer.tag ? ` (cosign .${referrer.tag.split('.').at(-1)} tag)` : '';
            line(`  referrer ${referrer.digest}  ${referrer.artifactType ?? 'untyped'}${cosign}${of(referrer.subject!, plan.targetDigest)}`);
          }
          break;
        }
        case 'blob.started':
          blobBars.set(event.digest, bars?.create(event.size, 0, { label: event.digest.slice(7, 19), detail: formatBytes(event.size) }) as cliProgress.SingleBar);
          break;
        case 'blob.progress':
          blobBars.get(event.digest)?.update(event.bytes);
          inFlight.set(event.digest, event.bytes);
          drawOverall();
          break;
        case 'blob.done': {
          const bar = blobBars.get(event.digest);
          if (bar) bars?.remove(bar);
          blobBars.delete(event.digest);
          inFlight.delete(event.digest);
          blobsDone += 1;
          if (event.how === 'copied') bytesDone += event.size;
          drawOverall();
          break;
        }
        case 'tag.deleted':
          line(`deleted    ${event.reference}`);
          break;
        case 'referrer.deleted':
          line(`deleted    ${event.tag ?? event.digest}  referrer of ${event.subject}`);
          break;
        case 'batch.retrying': {
          const message = `retrying ${event.phase} in ${formatDuration(event.retryAt - Date.now())} (attempt ${event.attempt} of ${event.maxAttempts}): ${event.error.message}`;
          if (bars) bars.log(`${message}\n`);
          else stderr.write(`${message}\n`);
          break;
        }
        case 'tags.selected': {
          if (!dryRun) break;
          const leftOut = describeLeftOut(event);
          line(`selected   ${event.kept.length} of ${count(event.listed, 'tag')}${event.kept.length ? `: ${event.kept.join(', ')}` : ''}${leftOut ? `; left out ${leftOut}` : ''}`);
          break;
        }
      }
    },
    status: (status, _phase, context) => {
      const { progress } = context;
      tags = { done: progress.tagsCopied + progress.tagsUnchanged, total: progress.tagsTotal };
      drawOverall();
      if (status === 'retrying' && context.retryAt !== lastRetry && context.retryAt !== undefined) {
        lastRetry = context.retryAt;
        const wait = formatDuration(context.retryAt - Date.now());
        const message = `retrying in ${wait} (attempt ${context.attempt} of ${context.job.retry.maxAttempts}): ${context.error?.message}`;
        if (bars) bars.log(`${message}\n`);
        else stderr.write(`${message}\n`);
      }
    },
    finish: (status, context) => {
      clearInterval(ticker);
      // Lines logged since the last redraw are written by a redraw: flush them before the bars go.
      bars?.update();
      bars?.stop();
      const p = context.progress;
      const took = formatDuration(Date.now() - started);
      if (status === 'finished' && dryRun) {
        const bytes = [...planned.values()].reduce((sum, size) => sum + size, 0);
        stdout.write(`dry run: ${count(plannedTags, 'tag')} to copy, ${p.tagsUnchanged} unchanged${leftOut(p)}; ${referrers(plannedReferrers, 'to copy')}${count(planned.size, 'blob')} to copy (${formatBytes(bytes)}); nothing written; ${took}\n`);
      } else if (status === 'finished') {
        stdout.write(`finished: ${count(p.tagsTotal, 'tag')} (${p.tagsCopied} copied, ${p.tagsUnchanged} unchanged${leftOut(p)}); ${referrers(p.referrersCopied, 'copied')}${count(p.blobsCopied, 'blob')} copied (${formatBytes(p.bytesCopied)}), ${p.blobsMounted} mounted; ${took}\n`);
        if (failedTags.length > 0) stderr.write(`failed: ${failedTags.join(', ')} (each line above says why; a retry copies only what is missing)\n`);
      } else if (status === 'stopped') {
        stderr.write(`stopped after ${took}: ${count(p.tagsCopied, 'tag')} copied, ${p.tagsTotal - p.tagsCopied - p.tagsUnchanged} not done\n`);
      } else {
        stderr.write(`error: ${context.error?.message ?? 'the job failed'}\n`);
      }
    },
  };
}

/** Refused and failed tags are counted only when there are some (their lines say why). */
function leftOut(progress: ReplicationProgress): string {
  return (progress.tagsRefused > 0 ? `, ${progress.tagsRefused} refused` : '') + (progress.tagsFailed > 0 ? `, ${progress.tagsFailed} failed` : '');
}

/** Referrers are named only when there are some: `5 referrers copied; `. */
function referrers(n: number, done: string): string {
  return n > 0 ? `${count(n, 'referrer')} ${done}; ` : '';
}

/** ` of sha256:…` for a referrer of a platform manifest or of another referrer; nothing for one of the image. */
function of(subject: string, image: string | undefined): string {
  return subject === image ? '' : ` of ${subject}`;
}

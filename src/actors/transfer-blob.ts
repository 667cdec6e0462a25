import { phase } from './phase.js';
import { abortable } from '../services/abortable.js';
import type { AnnouncedUpload } from '../services/blob-locator.js';
import { copyBlob } from '../services/copy-blob.js';
import { markPresent, oneBatchAtATime, openRepository, type JobRuntime } from '../services/job-runtime.js';
import { headBlob } from '../services/registry/blob.js';
import { cancelUpload, startUpload } from '../services/registry/upload.js';
import { RegistryError } from '../services/registry/errors.js';
import type { Repository } from '../services/registry/repository.js';
import type { Descriptor } from '../services/registry/media-types.js';
import type { ErrorInfo } from '../services/registry/errors.js';
import { orItemFailure } from './item-failure.js';
import type { Location } from './types.js';

/** How many blobs move at once, and how fast, is the job's (JobRuntime.blobSlots and bandwidth): its batches share them. */
export interface TransferBlobInput {
  source: Location;
  destination: Location;
  blobs: Descriptor[];
}

export interface TransferBlobOutput {
  copied: number;
  mounted: number;
  bytes: number;
  /** Blobs missing, corrupt or refused: the items that need them fail, the others go on. */
  failed: FailedBlob[];
}

export interface FailedBlob {
  digest: string;
  error: ErrorInfo;
}

export type TransferEvent =
  | { type: 'blob.started'; digest: string; size: number }
  | { type: 'blob.progress'; digest: string; size: number; bytes: number }
  | { type: 'blob.done'; digest: string; size: number; how: 'copied' | 'mounted' | 'present' | 'failed' };

/** Progress is reported at most this often per blob, besides its start and end. */
const PROGRESS_INTERVAL_MS = 200;

export const copyBlobs = (runtime: JobRuntime) =>
  phase<TransferBlobOutput, TransferBlobInput, TransferEvent>(runtime, async ({ input, signal, emit }) => {
    const source = await openRepository(runtime, input.source, 'pull', signal);
    const destination = await openRepository(runtime, input.destination, 'push', signal);
    const sameRegistry = input.source.registry === input.destination.registry;
    const limiter = runtime.bandwidth;
    const result: TransferBlobOutput = { copied: 0, mounted: 0, bytes: 0, failed: [] };

    const copyOne = async (blob: Descriptor): Promise<void> => {
      const known = runtime.blobs.get(blob.digest);
      // A restored or retried job has not asked (or has already copied): ask again.
      if (known === 'present' || (known === undefined && (await headBlob(destination, blob.digest, signal)) !== undefined)) {
        markPresent(runtime, destination, blob.digest);
        emit({ type: 'blob.done', digest: blob.digest, size: blob.size, how: 'present' });
        return;
      }
      emit({ type: 'blob.started', digest: blob.digest, size: blob.size });
      const { registry, repository } = input.destination;
      let from = sameRegistry ? input.source.repository : runtime.locator.find(registry, blob.digest, repository);
      let upload: AnnouncedUpload | undefined;
      // Another copy uploading the same blob to this registry (here or on another node): wait,
      // then mount it from there; if that upload fails, claim it again.
      while (from === undefined && upload === undefined && !sameRegistry) {
        const turn = await runtime.locator.claim(registry, blob.digest, repository, signal);
        if ('upload' in turn) {
          upload = turn.upload;
          continue;
        }
        from = await abortable(turn.underway, signal, `wait for another copy's upload of ${blob.digest} to ${registry}`);
        if (from === repository) {
          // That copy was to this very repository: the blob is here now.
          markPresent(runtime, destination, blob.digest);
          emit({ type: 'blob.done', digest: blob.digest, size: blob.size, how: 'present' });
          return;
        }
      }
      // A mount the registry declines (202) opens the session the upload then uses.
      const start = from === undefined ? undefined : await startUpload(destination, { mount: { digest: blob.digest, from }, signal: sessionSignal() });
      const mounted = start?.mounted === true;
      if (!mounted) {
        let sent = 0;
        let reported = 0;
        const session = start && !start.mounted ? Promise.resolve(start.location) : openSession(destination, blob);
        try {
          await copyBlob(source, destination, blob, session, {
            ...runtime.transfer,
            signal,
            ...(limiter ? { limiter } : {}),
            onBytes: (n) => {
              sent += n;
              const now = Date.now();
              if (now - reported >= PROGRESS_INTERVAL_MS) {
                reported = now;
                emit({ type: 'blob.progress', digest: blob.digest, size: blob.size, bytes: sent });
              }
            },
          });
        } catch (error) {
          upload?.settle(false);
          const location = await session.catch(() => undefined);
          if (location) await cancelUpload(destination, location);
          throw error;
        }
        upload?.settle(true);
      }
      runtime.transferred.set(blob.digest, { how: mounted ? 'mounted' : 'copied', size: blob.size });
      markPresent(runtime, destination, blob.digest);
      emit({ type: 'blob.done', digest: blob.digest, size: blob.size, how: mounted ? 'mounted' : 'copied' });
    };

    // After the first failure no blob starts, but those under way finish (what they moved is
    // counted by the attempt that completes), then the failure is thrown.
    let failure: { error: unknown } | undefined;
    // A blob another batch of the job has in hand is waited for without taking a slot.
    const settled = await Promise.allSettled(
      input.blobs.map((blob) =>
        oneBatchAtATime(runtime, blob.digest, signal, () =>
          runtime.blobSlots.use(async () => {
            if (failure) return;
            try {
              const alone = await orItemFailure(() => runtime.cleanups.track(copyOne(blob)));
              if (!alone) return;
              result.failed.push({ digest: blob.digest, error: alone.error });
              emit({ type: 'blob.done', digest: blob.digest, size: blob.size, how: 'failed' });
            } catch (error) {
              failure ??= { error };
            }
          }, signal),
        ),
      ),
    );
    if (failure) throw failure.error;
    const aborted = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (aborted) throw aborted.reason;
    countTransferred(runtime, input.blobs, result);
    return result;
  });

/** Counts the blobs this job moved, in this attempt or one that failed after them, once. */
function countTransferred(runtime: JobRuntime, blobs: Descriptor[], result: TransferBlobOutput): void {
  for (const blob of blobs) {
    const done = runtime.transferred.get(blob.digest);
    if (!done) continue;
    runtime.transferred.delete(blob.digest);
    result.copied += done.how === 'copied' ? 1 : 0;
    result.mounted += done.how === 'mounted' ? 1 : 0;
    result.bytes += done.how === 'copied' ? done.size : 0;
  }
}

/**
 * What a session-opening POST answers to instead of the job's signal: cut off by STOP after the
 * registry opened the session, it would leave a session whose location ferry never learnt. Let
 * it answer; the transfer, aborted, then cancels the session.
 */
const sessionSignal = (): AbortSignal => AbortSignal.timeout(30_000);

/** A plain upload session, opened while the source GET starts. */
async function openSession(destination: Repository, blob: Descriptor): Promise<URL> {
  const upload = await startUpload(destination, { signal: sessionSignal() });
  if (upload.mounted) throw new RegistryError('PROTOCOL', `start upload to ${destination.ref()} for ${blob.digest}: 201 without a mount request`);
  return upload.location;
}

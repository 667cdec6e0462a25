import { RegistryError, toErrorInfo, type ErrorCode, type ErrorInfo } from '../services/registry/errors.js';

/**
 * What concerns one item and not the job: its manifest or a blob missing, corrupt, malformed
 * or refused. Such an item fails alone and the others go on. Anything transient still fails the
 * phase, which the machine retries; anything else (credentials, TLS, a lost lease, STOP) ends
 * or halts the job as before.
 */
const ITEM_CODES: ReadonlySet<ErrorCode> = new Set(['NOT_FOUND', 'INVALID_MANIFEST', 'DIGEST_MISMATCH', 'SIZE_MISMATCH', 'UNSUPPORTED', 'DENIED']);

export function itemFailure(error: unknown): ErrorInfo | undefined {
  return error instanceof RegistryError && ITEM_CODES.has(error.code) ? toErrorInfo(error) : undefined;
}

/** `task`'s result, or the item error it failed with; any other error is thrown. */
export async function orItemFailure<T>(task: () => Promise<T>): Promise<T | { error: ErrorInfo }> {
  try {
    return await task();
  } catch (error) {
    const failure = itemFailure(error);
    if (failure) return { error: failure };
    throw error;
  }
}

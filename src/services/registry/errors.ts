/**
 * Every failure ferry reports is a RegistryError: a stable `code`, whether a retry can help
 * (`transient`), and a message that names what failed, for which reference and digest.
 */
export type ErrorCode =
  | 'INVALID_REFERENCE'
  | 'INVALID_HEADER'
  | 'INVALID_MANIFEST'
  | 'INVALID_CONFIG'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NOT_FOUND'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'TOO_MANY_REQUESTS'
  | 'SERVER_ERROR'
  | 'NETWORK'
  | 'TIMEOUT'
  | 'TLS'
  | 'ABORTED'
  | 'PROTOCOL'
  | 'UNSUPPORTED'
  /** Someone else changed what we were changing (a fallback index) while we did. */
  | 'CONFLICT';

const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set([
  'TOO_MANY_REQUESTS',
  'SERVER_ERROR',
  'NETWORK',
  'TIMEOUT',
  'CONFLICT',
]);

export interface RegistryErrorOptions {
  status?: number;
  /** Seconds the registry asked us to wait (Retry-After). */
  retryAfterSeconds?: number;
  cause?: unknown;
}

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  readonly code: ErrorCode;
  readonly transient: boolean;
  readonly status: number | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: RegistryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.transient = TRANSIENT_CODES.has(code);
    this.status = options.status;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** The plain-data form of an error, as kept in a job's context and snapshot. */
export interface ErrorInfo {
  code: ErrorCode;
  message: string;
  transient: boolean;
  status?: number;
  retryAfterSeconds?: number;
}

export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof RegistryError) {
    return {
      code: error.code,
      message: error.message,
      transient: error.transient,
      ...(error.status === undefined ? {} : { status: error.status }),
      ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  // An unclassified error is a bug or a local failure: retrying the same step will not fix it.
  return { code: 'PROTOCOL', message, transient: false };
}

export function isRegistryError(error: unknown, code?: ErrorCode): error is RegistryError {
  return error instanceof RegistryError && (code === undefined || error.code === code);
}

/** A write that contradicts what is stored, such as a name another record already has. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** A write that refers to a record that does not exist, such as a policy's registry. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/**
 * A write of a job's step by a node that no longer holds the job: its lease ran out and
 * another node claimed it (or it was handed back). The writer must stop running the job.
 */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

/**
 * The database could not be reached or went away mid-query (PostgreSQL restarting, a cut
 * connection): nothing is wrong with the request, and the same call goes through later.
 * SQLSTATE classes 08 (connection exception) and 57P (operator intervention, such as a
 * shutdown), node's socket errors, and node-postgres's own words for a dropped connection.
 */
export function isStoreUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (/^(08|57P)/.test(code) || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code))) return true;
  return error instanceof Error && /Connection terminated|connection timeout|connection error/i.test(error.message);
}

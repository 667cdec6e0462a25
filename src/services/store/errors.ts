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

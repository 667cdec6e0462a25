/** A write that contradicts what is stored, such as a name another record already has. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** A write that refers to a record that does not exist, such as a policy's registry. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

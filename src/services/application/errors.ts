import { ConflictError } from '../store/errors.js';

/** The record a command addresses does not exist (the API answers 404). */
export class UnknownRecordError extends Error {
  override readonly name = 'UnknownRecordError';
}

/** The record a command addresses, or UnknownRecordError. */
export function found<T>(record: T | undefined, what: string, id: string): T {
  if (record === undefined) throw new UnknownRecordError(`no ${what} ${id}`);
  return record;
}

/** The command contradicts the record's state, such as stopping a job that has ended (409). */
export function conflict(message: string): ConflictError {
  return new ConflictError(message);
}

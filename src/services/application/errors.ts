import { ConflictError } from '../store/errors.js';

/** The record a command addresses does not exist (the API answers 404). */
export class UnknownRecordError extends Error {
  override readonly name = 'UnknownRecordError';
}

export function notFound(what: string, id: string): UnknownRecordError {
  return new UnknownRecordError(`no ${what} ${id}`);
}

/** The command contradicts the record's state, such as stopping a job that has ended (409). */
export function conflict(message: string): ConflictError {
  return new ConflictError(message);
}

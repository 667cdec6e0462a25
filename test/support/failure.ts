import { expect } from 'vitest';
import { RegistryError } from '../../src/services/registry/errors.js';

/** The RegistryError a promise rejects with; fails the test if it resolves or rejects with anything else. */
export async function failure(promise: Promise<unknown>): Promise<RegistryError> {
  let outcome: unknown;
  try {
    outcome = await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(RegistryError);
    return error as RegistryError;
  }
  throw new Error(`expected a RegistryError, got ${JSON.stringify(outcome)}`);
}

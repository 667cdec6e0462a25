import { RegistryError } from './registry/errors.js';

/** Waits for a shared promise, giving up (without cancelling it for others) when `signal` aborts. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new RegistryError('ABORTED', `${what}: aborted`));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new RegistryError('ABORTED', `${what}: aborted`));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

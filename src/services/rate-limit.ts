import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A token bucket of bytes shared by every stream of a job: `take` waits until the bytes fit
 * the rate. Bursts are capped at a tenth of a second's worth.
 */
export class RateLimiter {
  readonly #bytesPerSecond: number;
  readonly #burst: number;
  #available: number;
  #last = performance.now();

  constructor(bytesPerSecond: number) {
    this.#bytesPerSecond = bytesPerSecond;
    this.#burst = Math.max(1, bytesPerSecond / 10);
    this.#available = this.#burst;
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const now = performance.now();
    this.#available = Math.min(this.#burst, this.#available + ((now - this.#last) / 1000) * this.#bytesPerSecond);
    this.#last = now;
    this.#available -= bytes;
    if (this.#available < 0) await sleep((-this.#available / this.#bytesPerSecond) * 1000, undefined, signal ? { signal } : {});
  }
}

/** Passes a stream's chunks on no faster than the limiter allows. */
export async function* throttled(source: AsyncIterable<Buffer>, limiter: RateLimiter | undefined, signal?: AbortSignal): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    await limiter?.take(chunk.length, signal);
    yield chunk;
  }
}

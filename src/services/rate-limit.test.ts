import { describe, expect, it } from 'vitest';
import { RateLimiter, throttled } from './rate-limit.js';

describe('RateLimiter', () => {
  it('spreads bytes over time at no more than the rate (plus one burst)', async () => {
    const limiter = new RateLimiter(200_000);
    const started = performance.now();
    for (let i = 0; i < 10; i++) await limiter.take(10_000);
    // 100 000 bytes at 200 000 B/s, less the 20 000-byte burst: at least 0.4 s.
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
  });

  it('passes every chunk through unchanged', async () => {
    async function* chunks() {
      yield Buffer.from('ab');
      yield Buffer.from('cd');
    }
    const out: string[] = [];
    for await (const chunk of throttled(chunks(), new RateLimiter(1_000_000))) out.push(chunk.toString());
    expect(out).toEqual(['ab', 'cd']);
  });

  it('stops waiting when the signal aborts', async () => {
    const limiter = new RateLimiter(1000);
    await limiter.take(100);
    const controller = new AbortController();
    const waiting = limiter.take(10_000, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toThrow(/abort/i);
  });
});

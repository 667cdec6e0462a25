import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Slots } from './slots.js';

describe('Slots', () => {
  it('runs at most its size at once, the others in the order they came', async () => {
    const slots = new Slots(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4].map((n) =>
        slots.use(async () => {
          running += 1;
          most = Math.max(most, running);
          order.push(n);
          await sleep(5);
          running -= 1;
        }),
      ),
    );
    expect(most).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('takes a waiter whose signal aborts out of the line, and frees the slot of a task that throws', async () => {
    const slots = new Slots(1);
    let release!: () => void;
    const holder = slots.use(() => new Promise<void>((resolve) => (release = resolve)));
    const controller = new AbortController();
    const gaveUp = slots.use(async () => 'ran', controller.signal);
    const next = slots.use(async () => 'next');
    controller.abort(new Error('stopped'));
    await expect(gaveUp).rejects.toThrow('stopped');
    release();
    await holder;
    await expect(next).resolves.toBe('next');
    await expect(slots.use(async () => Promise.reject(new Error('broken')))).rejects.toThrow('broken');
    await expect(slots.use(async () => 'free again')).resolves.toBe('free again');
    await expect(slots.use(async () => 'never', AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });
});

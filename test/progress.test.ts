import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicate, replicationInput } from './support/ferry.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';

let fixture: ReplicationFixture;

beforeAll(async () => {
  fixture = await replicationFixture(
    { app: { layers: [{ size: 20_000, seed: 'progress-1' }, { size: 30_000, seed: 'progress-2' }, { size: 40_000, seed: 'progress-3' }, { size: 50_000, seed: 'progress-4' }] } },
    'progress/app',
  );
});

afterAll(async () => {
  await fixture?.stop();
});

describe('progress counters', () => {
  it('count the blobs the log says were copied, also those an attempt copied before it failed', async () => {
    const blobs = fixture.built.app!.blobs;
    // One at a time: the blobs before the last are copied, the last fails the phase, the retry copies it.
    fixture.sourceProxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${blobs.at(-1)}`), times: 1, fault: { type: 'status', status: 503 } });
    const result = await replicate(replicationInput(`${fixture.sourceProxy.host}/progress/app`, `${fixture.destination.host}/progress/app`, { blobConcurrency: 1 }));
    expect(result.batchRetries).toEqual(['transferBlob']);
    const copied = result.events.filter((e) => e.type === 'blob.done' && e.how === 'copied') as Array<{ size: number }>;
    expect(copied).toHaveLength(blobs.length);
    const { progress } = result.actor.getSnapshot().context;
    expect(progress.blobsCopied).toBe(copied.length);
    expect(progress.bytesCopied).toBe(copied.reduce((sum, blob) => sum + blob.size, 0));
  });
});

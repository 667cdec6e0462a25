import { beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, suiteStore } from '../../test/support/databases.js';
import { BlobLocator, type UploadTurn } from './blob-locator.js';
import type { BlobUploadStore } from './store/types.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const never = new AbortController().signal;

function upload(turn: UploadTurn) {
  if (!('upload' in turn)) throw new Error('expected to upload the blob itself');
  return turn.upload;
}

function underway(turn: UploadTurn) {
  if (!('underway' in turn)) throw new Error('expected another copy to be uploading the blob');
  return turn.underway;
}

describe('BlobLocator', () => {
  it('finds a repository holding the blob other than the one asking', () => {
    const locator = new BlobLocator();
    locator.add('r.example', 'team/one', DIGEST);
    expect(locator.find('r.example', DIGEST, 'team/two')).toBe('team/one');
    expect(locator.find('r.example', DIGEST, 'team/one')).toBeUndefined();
    expect(locator.find('other.example', DIGEST, 'team/two')).toBeUndefined();
  });

  it('tells waiters where an upload under way landed, and then knows the blob is there', async () => {
    const locator = new BlobLocator();
    const first = upload(await locator.claim('r.example', DIGEST, 'team/one', never));
    const waiting = underway(await locator.claim('r.example', DIGEST, 'team/two', never));
    upload(await locator.claim('other.example', DIGEST, 'team/two', never));
    first.settle(true);
    expect(await waiting).toBe('team/one');
    expect(locator.find('r.example', DIGEST, 'team/two')).toBe('team/one');
  });

  it('does not let a copy upload a blob again to the repository an upload just put it in', async () => {
    const locator = new BlobLocator();
    upload(await locator.claim('r.example', DIGEST, 'team/one', never)).settle(true);
    expect(await underway(await locator.claim('r.example', DIGEST, 'team/one', never))).toBe('team/one');
  });

  it('tells waiters an upload failed, so they claim it themselves', async () => {
    const locator = new BlobLocator();
    const first = upload(await locator.claim('r.example', DIGEST, 'team/one', never));
    const waiting = underway(await locator.claim('r.example', DIGEST, 'team/two', never));
    first.settle(false);
    expect(await waiting).toBeUndefined();
    expect(locator.find('r.example', DIGEST, 'team/two')).toBeUndefined();
    upload(await locator.claim('r.example', DIGEST, 'team/two', never));
  });
});

describe('BlobLocator with the database away', () => {
  it('uploads without the claim when the store cannot be reached, and still makes this process\'s other copies wait', async () => {
    // What node-postgres throws when PostgreSQL restarts under a query.
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const away: BlobUploadStore = {
      claim: () => Promise.reject(reset),
      renew: () => Promise.reject(reset),
      finish: () => Promise.reject(reset),
      find: () => Promise.reject(reset),
      forgetExpired: () => Promise.reject(reset),
    };
    const locator = new BlobLocator({ uploads: away, node: 'A', staleAfterMs: 60_000 });
    const first = upload(await locator.claim('r.example', DIGEST, 'team/one', never));
    const waiting = underway(await locator.claim('r.example', DIGEST, 'team/two', never));
    first.settle(true);
    expect(await waiting).toBe('team/one');
  });

  it('fails on a store error that is not the database being away', async () => {
    const broken: BlobUploadStore = {
      claim: () => Promise.reject(new Error('column "repository" does not exist')),
      renew: async () => {},
      finish: async () => {},
      find: async () => undefined,
      forgetExpired: async () => 0,
    };
    const locator = new BlobLocator({ uploads: broken, node: 'A', staleAfterMs: 60_000 });
    await expect(locator.claim('r.example', DIGEST, 'team/one', never)).rejects.toThrow('column "repository" does not exist');
  });
});

describe.each(ENGINES)('BlobLocator across nodes on %s', (engine) => {
  const store = suiteStore(engine, 'locator');
  beforeAll(async () => {
    for (const id of ['A', 'B']) await store().nodes.register({ id, host: 'h', pid: 1 });
  });

  it('makes a copy on another node wait for an upload under way, then mount it', async () => {
    const [a, b] = [new BlobLocator({ uploads: store().blobUploads, node: 'A', staleAfterMs: 60_000 }), new BlobLocator({ uploads: store().blobUploads, node: 'B', staleAfterMs: 60_000 })];
    const digest = `sha256:${'b'.repeat(64)}`;
    const first = upload(await a.claim('r.example', digest, 'team/one', never));
    const waiting = underway(await b.claim('r.example', digest, 'team/two', never));
    first.settle(true);
    expect(await waiting).toBe('team/one');
    expect(b.find('r.example', digest, 'team/two')).toBe('team/one');
    // Just done: a later copy on either node mounts rather than claims.
    expect(await underway(await b.claim('r.example', digest, 'team/three', never))).toBe('team/one');
  });

  it('hands the upload to the waiting node when the first gives it up', async () => {
    const [a, b] = [new BlobLocator({ uploads: store().blobUploads, node: 'A', staleAfterMs: 60_000 }), new BlobLocator({ uploads: store().blobUploads, node: 'B', staleAfterMs: 60_000 })];
    const digest = `sha256:${'c'.repeat(64)}`;
    const first = upload(await a.claim('r.example', digest, 'team/one', never));
    const waiting = underway(await b.claim('r.example', digest, 'team/two', never));
    first.settle(false);
    expect(await waiting).toBeUndefined();
    upload(await b.claim('r.example', digest, 'team/two', never));
    expect(await store().blobUploads.find('r.example', digest, 60_000)).toMatchObject({ node: 'B', state: 'uploading' });
  });
});

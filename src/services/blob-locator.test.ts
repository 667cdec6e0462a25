import { describe, expect, it } from 'vitest';
import { BlobLocator } from './blob-locator.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

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
    const upload = locator.uploading('r.example', DIGEST, 'team/one');
    const waiting = locator.underway('r.example', DIGEST);
    expect(locator.underway('other.example', DIGEST)).toBeUndefined();
    upload.settle(true);
    expect(await waiting).toBe('team/one');
    expect(locator.underway('r.example', DIGEST)).toBeUndefined();
    expect(locator.find('r.example', DIGEST, 'team/two')).toBe('team/one');
  });

  it('tells waiters an upload failed, so they upload the blob themselves', async () => {
    const locator = new BlobLocator();
    const upload = locator.uploading('r.example', DIGEST, 'team/one');
    const waiting = locator.underway('r.example', DIGEST);
    upload.settle(false);
    expect(await waiting).toBeUndefined();
    expect(locator.underway('r.example', DIGEST)).toBeUndefined();
    expect(locator.find('r.example', DIGEST, 'team/two')).toBeUndefined();
  });
});

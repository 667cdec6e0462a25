import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOciLayout, type BuiltTag } from '../../../test/support/images.js';
import { generateSigningKeys, pushSignature, signImage, signPayload, simpleSigningPayload, verifySignature } from '../../../test/support/referrers.js';
import { startRegistry, type RunningRegistry } from '../../../test/support/registry.js';
import { seedLayout } from '../../../test/support/skopeo.js';
import { RegistryClient } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import { Repository } from '../registry/repository.js';
import { signingKey, verifyCosignSignature } from './cosign.js';

const REPOSITORY = 'team/signed';
const TAGS = ['signed', 'unsigned', 'tampered', 'elsewhere', 'mixed'] as const;

let layout: string;
let built: Record<string, BuiltTag>;
let registry: RunningRegistry;
let client: RegistryClient;
let repo: Repository;
const keys = generateSigningKeys();
const digest = (tag: (typeof TAGS)[number]) => built[tag]!.digest;

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-cosign-test-'));
  [built, registry] = await Promise.all([
    writeOciLayout(layout, Object.fromEntries(TAGS.map((tag) => [tag, { layers: [{ size: 256, seed: `cosign-${tag}` }] }]))),
    startRegistry(),
  ]);
  await seedLayout(layout, [...TAGS], { host: registry.host, repository: REPOSITORY });
  client = await RegistryClient.connect({ registry: registry.host });
  repo = new Repository(client, REPOSITORY, ['pull']);

  await signImage(registry.host, REPOSITORY, digest('signed'), keys.privateKey);
  const payload = simpleSigningPayload(registry.host, REPOSITORY, digest('tampered'));
  const altered = Buffer.from(payload.toString().replace('"type":"cosign container image signature"', '"type":"cosign container image signaturE"'));
  await pushSignature(registry.host, REPOSITORY, digest('tampered'), altered, signPayload(payload, keys.privateKey));
  const forOther = simpleSigningPayload(registry.host, REPOSITORY, digest('signed'));
  await pushSignature(registry.host, REPOSITORY, digest('elsewhere'), forOther, signPayload(forOther, keys.privateKey));
  // A signature by another key, then a good one beside it.
  await signImage(registry.host, REPOSITORY, digest('mixed'), generateSigningKeys().privateKey);
  await signImage(registry.host, REPOSITORY, digest('mixed'), keys.privateKey);
});

afterAll(async () => {
  await client?.close();
  await registry?.stop();
  if (layout) await rm(layout, { recursive: true, force: true });
});

describe('verifyCosignSignature', () => {
  it('verifies a signed image with its key, and agrees with an independent verification', async () => {
    expect(await verifyCosignSignature(repo, digest('signed'), keys.publicKey)).toMatchObject({ verified: true });
    expect(await verifySignature(registry.host, REPOSITORY, digest('signed'), keys.publicKey)).toEqual({ verified: true });
  });

  it('refuses an image signed with another key', async () => {
    const other = generateSigningKeys().publicKey;
    expect(await verifyCosignSignature(repo, digest('signed'), other)).toEqual({
      verified: false,
      reason: expect.stringMatching(/the signature of payload sha256:[0-9a-f]{64} does not verify with the key$/),
    });
  });

  it('says an unsigned image is not signed, naming the tag it looked for', async () => {
    expect(await verifyCosignSignature(repo, digest('unsigned'), keys.publicKey)).toEqual({
      verified: false,
      reason: `${registry.host}/${REPOSITORY}@${digest('unsigned')} is not signed (no ${digest('unsigned').replace(':', '-')}.sig)`,
    });
  });

  it('refuses a payload changed after it was signed, and a valid signature of a payload that names another image', async () => {
    expect(await verifyCosignSignature(repo, digest('tampered'), keys.publicKey)).toMatchObject({ verified: false, reason: expect.stringContaining('does not verify') });
    expect(await verifyCosignSignature(repo, digest('elsewhere'), keys.publicKey)).toMatchObject({
      verified: false,
      reason: expect.stringContaining(`signs ${digest('signed')}, not ${digest('elsewhere')}`),
    });
  });

  it('verifies when one of several signatures is by the key', async () => {
    expect(await verifyCosignSignature(repo, digest('mixed'), keys.publicKey)).toMatchObject({ verified: true });
  });
});

describe('signingKey', () => {
  it("takes an ECDSA P-256 public key in PEM, as cosign's", () => {
    const pem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(signingKey(pem, 'cosign.pub').asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('refuses anything else, naming where the key came from', () => {
    expect(() => signingKey('not a key', 'keys/cosign.pub')).toThrow(RegistryError);
    expect(() => signingKey('not a key', 'keys/cosign.pub')).toThrow(/^keys\/cosign\.pub is not a PEM public key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => signingKey(rsa, 'rsa.pub')).toThrow('rsa.pub is not an ECDSA P-256 public key (cosign\'s keys are)');
  });
});

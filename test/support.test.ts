import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from './support/fault-proxy.js';
import type { FaultProxy } from './support/fault-proxy.js';
import { OCI_MEDIA_TYPES, writeOciLayout } from './support/images.js';
import type { BuiltTag, TagSpec } from './support/images.js';
import { POSTGRES_ADMIN_URL, createTestDatabase } from './support/postgres.js';
import {
  SIGNATURE_ANNOTATION,
  attachReferrer,
  fallbackIndex,
  fetchManifest,
  generateSigningKeys,
  pushSignature,
  signImage,
  signPayload,
  simpleSigningPayload,
  verifySignature,
} from './support/referrers.js';
import { freePort, startRegistry } from './support/registry.js';
import type { RunningRegistry } from './support/registry.js';
import { listTags, rawManifest, seedLayout, seedTag } from './support/skopeo.js';

const sharedLayer = { size: 300 * 1024, seed: 'shared' };
const tagSpecs: Record<string, TagSpec> = {
  single: { layers: [sharedLayer, { size: 1000, seed: 'single-top' }] },
  multi: {
    platforms: [
      { layers: [sharedLayer, { size: 2000, seed: 'amd64-top' }], platform: { os: 'linux', architecture: 'amd64' } },
      {
        layers: [sharedLayer, { size: 3000, seed: 'arm64-top' }],
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      },
    ],
  },
};

const sha256 = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function jwtClaims(token: string): { sub: string; aud: string; access: unknown[] } {
  const payload = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub: string; aud: string; access: unknown[] };
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

let layoutDir: string;
let built: Record<string, BuiltTag>;
let anonymous: RunningRegistry;
let htpasswd: RunningRegistry;
let token: RunningRegistry;

beforeAll(async () => {
  layoutDir = await mkdtemp(join(tmpdir(), 'ferry-layout-'));
  [built, anonymous, htpasswd, token] = await Promise.all([
    writeOciLayout(layoutDir, tagSpecs),
    startRegistry(),
    startRegistry({ auth: 'htpasswd' }),
    startRegistry({ auth: 'token' }),
  ]);
});

afterAll(async () => {
  await Promise.all([anonymous?.stop(), htpasswd?.stop(), token?.stop()]);
  await rm(layoutDir, { recursive: true, force: true });
});

function tag(name: string): BuiltTag {
  const result = built[name];
  if (!result) throw new Error(`no built tag ${name}`);
  return result;
}

function sharedDigests(): string[] {
  return tag('single').blobs.filter((digest) => tag('multi').blobs.includes(digest));
}

describe('writeOciLayout', () => {
  it('builds a manifest and an index that share one layer blob, each blob written once', async () => {
    const single = tag('single');
    const multi = tag('multi');
    expect(single.mediaType).toBe(OCI_MEDIA_TYPES.manifest);
    expect(single.manifests).toEqual([]);
    expect(multi.mediaType).toBe(OCI_MEDIA_TYPES.index);
    expect(multi.manifests).toHaveLength(2);

    expect(sharedDigests()).toHaveLength(1);
    expect(single.blobs).toHaveLength(3);
    expect(multi.blobs).toHaveLength(5);

    const files = await readdir(join(layoutDir, 'blobs', 'sha256'));
    const expected = new Set([...single.blobs, ...multi.blobs, ...multi.manifests, single.digest, multi.digest]);
    expect(files.map((file) => `sha256:${file}`).sort()).toEqual([...expected].sort());
    for (const file of files) {
      expect(sha256(await readFile(join(layoutDir, 'blobs', 'sha256', file)))).toBe(`sha256:${file}`);
    }

    const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    expect(index.manifests.map((entry) => [entry.annotations['org.opencontainers.image.ref.name'], entry.digest])).toEqual([
      ['single', single.digest],
      ['multi', multi.digest],
    ]);
  });

  it('is deterministic across layouts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-layout-'));
    try {
      const again = await writeOciLayout(dir, { other: tagSpecs.multi! });
      expect(again.other?.digest).toBe(tag('multi').digest);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('anonymous registry', () => {
  it('is seeded by skopeo with digests preserved and lists its tags', async () => {
    const repo = { host: anonymous.host, repository: 'smoke/app' };
    await seedLayout(layoutDir, ['single', 'multi'], repo);

    for (const name of ['single', 'multi']) {
      const manifest = await rawManifest({ ...repo, tag: name });
      expect(manifest.digest).toBe(tag(name).digest);
      expect(manifest.mediaType).toBe(tag(name).mediaType);
      expect(sha256(manifest.bytes)).toBe(manifest.digest);
    }
    expect((await listTags(repo)).sort()).toEqual(['multi', 'single']);
    expect(await listTags({ host: anonymous.host, repository: 'smoke/missing' })).toEqual([]);
  });
});

describe('referrers as cosign and oras push them without the referrers API', () => {
  const repository = 'smoke/signed';
  let single: string;
  let multi: string;

  beforeAll(async () => {
    await seedLayout(layoutDir, ['single', 'multi'], { host: anonymous.host, repository });
    [single, multi] = [tag('single').digest, tag('multi').digest];
  });

  it('signs an image under sha256-<hex>.sig so that its key verifies it and another key does not', async () => {
    const keys = generateSigningKeys();
    const signature = await signImage(anonymous.host, repository, single, keys.privateKey);
    expect(signature.tag).toBe(`sha256-${single.slice('sha256:'.length)}.sig`);
    const stored = await fetchManifest(anonymous.host, repository, signature.tag);
    expect(stored?.digest).toBe(signature.digest);
    const layers = (JSON.parse(stored!.bytes.toString()) as { layers: { mediaType: string; annotations: Record<string, string> }[] }).layers;
    expect(layers).toHaveLength(1);
    expect(layers[0]!.mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    expect(layers[0]!.annotations[SIGNATURE_ANNOTATION]).toMatch(/^[A-Za-z0-9+/]+=*$/);

    expect(await verifySignature(anonymous.host, repository, single, keys.publicKey)).toEqual({ verified: true });
    expect(await verifySignature(anonymous.host, repository, single, generateSigningKeys().publicKey)).toMatchObject({ verified: false });
    expect(await verifySignature(anonymous.host, repository, multi, keys.publicKey)).toEqual({ verified: false, reason: `no signature tag sha256-${multi.slice(7)}.sig` });
  });

  it('does not verify a tampered payload, nor a valid signature of a payload that claims another digest', async () => {
    const keys = generateSigningKeys();
    const payload = simpleSigningPayload(anonymous.host, repository, multi);
    const tampered = Buffer.from(payload.toString().replace('cosign container image signature', 'cosign container image signaturE'));
    await pushSignature(anonymous.host, repository, multi, tampered, signPayload(payload, keys.privateKey));
    expect(await verifySignature(anonymous.host, repository, multi, keys.publicKey)).toMatchObject({ verified: false, reason: expect.stringContaining('does not verify') });

    const elsewhere = simpleSigningPayload(anonymous.host, repository, single);
    await pushSignature(anonymous.host, repository, multi, elsewhere, signPayload(elsewhere, keys.privateKey));
    expect(await verifySignature(anonymous.host, repository, multi, keys.publicKey)).toMatchObject({ verified: false, reason: expect.stringContaining(`claims ${single}`) });

    // The third, good signature is added beside the two bad ones, and verifies.
    const good = simpleSigningPayload(anonymous.host, repository, multi);
    const third = await pushSignature(anonymous.host, repository, multi, good, signPayload(good, keys.privateKey));
    const stored = await fetchManifest(anonymous.host, repository, third.tag);
    expect((JSON.parse(stored!.bytes.toString()) as { layers: unknown[] }).layers).toHaveLength(3);
    expect(await verifySignature(anonymous.host, repository, multi, keys.publicKey)).toEqual({ verified: true });
  });

  it('attaches two artifacts by digest and the fallback index lists both, the first kept', async () => {
    const sbom = await attachReferrer(anonymous.host, repository, multi, {
      artifactType: 'application/spdx+json', content: Buffer.from('{"spdxVersion":"SPDX-2.3"}'), mediaType: 'application/spdx+json',
    });
    const provenance = await attachReferrer(anonymous.host, repository, multi, {
      artifactType: 'application/vnd.in-toto+json', content: Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}'),
      mediaType: 'application/vnd.in-toto+json', annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    });
    expect(await fallbackIndex(anonymous.host, repository, multi)).toEqual([sbom, provenance]);
    expect(provenance.annotations).toEqual({ 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' });

    const artifact = await fetchManifest(anonymous.host, repository, sbom.digest);
    const parsed = JSON.parse(artifact!.bytes.toString()) as { artifactType: string; config: { digest: string }; subject: { digest: string; mediaType: string } };
    expect(parsed.artifactType).toBe('application/spdx+json');
    expect(parsed.config.digest).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    expect(parsed.subject).toMatchObject({ digest: multi, mediaType: OCI_MEDIA_TYPES.index });
    // Untagged: only the image tags, the fallback index and the signature tag are listed.
    expect((await listTags({ host: anonymous.host, repository })).sort()).toEqual(
      ['multi', `sha256-${multi.slice(7)}`, `sha256-${multi.slice(7)}.sig`, `sha256-${single.slice(7)}.sig`, 'single'].sort(),
    );
  });
});

describe('htpasswd registry', () => {
  it('challenges with Basic and accepts only the right password', async () => {
    const user = htpasswd.user!;
    const anonymousPing = await fetch(`${htpasswd.url}/v2/`);
    expect(anonymousPing.status).toBe(401);
    expect(anonymousPing.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const wrong = await fetch(`${htpasswd.url}/v2/`, { headers: { authorization: basic(user.username, 'nope') } });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${htpasswd.url}/v2/`, { headers: { authorization: basic(user.username, user.password) } });
    expect(right.status).toBe(200);

    const repo = { host: htpasswd.host, repository: 'smoke/auth', creds: user };
    await seedTag(layoutDir, 'single', { ...repo, tag: 'renamed' });
    expect((await rawManifest({ ...repo, tag: 'renamed' })).digest).toBe(tag('single').digest);
    await expect(rawManifest({ host: htpasswd.host, repository: 'smoke/auth', tag: 'renamed' })).rejects.toThrow(
      /skopeo inspect/,
    );
  });
});

describe('token registry', () => {
  it('issues tokens the registry accepts, granting scopes only to the right user', async () => {
    const user = token.user!;
    const ping = await fetch(`${token.url}/v2/`);
    expect(ping.status).toBe(401);
    const challenge = ping.headers.get('www-authenticate') ?? '';
    const realm = /realm="([^"]+)"/.exec(challenge)?.[1];
    const service = /service="([^"]+)"/.exec(challenge)?.[1];
    expect(challenge).toMatch(/^Bearer /);
    expect(realm).toBeDefined();

    const tokenUrl = `${realm}?service=${service}&scope=repository:smoke/tok:pull,push`;
    const before = token.tokenRequests ?? 0;
    const anonymousToken = (await (await fetch(tokenUrl)).json()) as { token: string };
    expect(jwtClaims(anonymousToken.token).access).toEqual([]);
    expect((await fetch(tokenUrl, { headers: { authorization: basic(user.username, 'nope') } })).status).toBe(401);
    const granted = (await (
      await fetch(tokenUrl, { headers: { authorization: basic(user.username, user.password) } })
    ).json()) as { token: string; access_token: string; expires_in: number };
    expect(granted.access_token).toBe(granted.token);
    expect(granted.expires_in).toBeGreaterThan(0);
    expect(jwtClaims(granted.token)).toMatchObject({
      sub: user.username,
      aud: service,
      access: [{ type: 'repository', name: 'smoke/tok', actions: ['pull', 'push'] }],
    });
    expect(token.tokenRequests).toBe(before + 3);

    const repo = { host: token.host, repository: 'smoke/tok', creds: user };
    await seedTag(layoutDir, 'multi', repo);
    expect((await rawManifest({ ...repo, tag: 'multi' })).digest).toBe(tag('multi').digest);
    await expect(rawManifest({ host: token.host, repository: 'smoke/tok', tag: 'multi' })).rejects.toThrow(
      /skopeo inspect/,
    );

    const manifestUrl = `${token.url}/v2/smoke/tok/manifests/${tag('multi').digest}`;
    const headers = { accept: OCI_MEDIA_TYPES.index };
    expect((await fetch(manifestUrl, { headers: { ...headers, authorization: `Bearer ${anonymousToken.token}` } })).status).toBe(401);
    const withToken = await fetch(manifestUrl, { headers: { ...headers, authorization: `Bearer ${granted.token}` } });
    expect(withToken.status).toBe(200);
    expect(sha256(new Uint8Array(await withToken.arrayBuffer()))).toBe(tag('multi').digest);
  });
});

describe('notifications', () => {
  it('posts push events to notifyUrl', async () => {
    const bodies: string[] = [];
    const sink = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        bodies.push(body);
        res.end();
      });
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    const registry = await startRegistry({ notifyUrl: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/events` });
    try {
      await seedTag(layoutDir, 'single', { host: registry.host, repository: 'smoke/notify' });
      const manifestPushes = (): unknown[] =>
        bodies
          .flatMap((body) => (JSON.parse(body) as { events: { action: string; target: { tag?: string } }[] }).events)
          .filter((event) => event.action === 'push' && event.target.tag === 'single');
      await expect.poll(manifestPushes, { timeout: 5_000 }).toMatchObject([
        { target: { repository: 'smoke/notify', digest: tag('single').digest } },
      ]);
    } finally {
      await registry.stop();
      sink.closeAllConnections();
      sink.close();
    }
  });
});

describe('fault proxy', () => {
  let proxy: FaultProxy;
  let sharedDigest: string;
  let sharedBlobUrl: string;

  beforeAll(async () => {
    await seedTag(layoutDir, 'single', { host: anonymous.host, repository: 'smoke/proxy' });
    proxy = await startFaultProxy(anonymous.host);
    sharedDigest = sharedDigests()[0] ?? '';
    sharedBlobUrl = `${proxy.url}/v2/smoke/proxy/blobs/${sharedDigest}`;
  });

  afterAll(() => proxy?.stop());

  it('answers a status fault `times` times, then forwards', async () => {
    proxy.addRule({ method: 'GET', path: /^\/v2\/$/, fault: { type: 'status', status: 503, body: 'down' }, times: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${proxy.url}/v2/`)).status);
    expect(statuses).toEqual([503, 503, 200]);
    expect(proxy.requests.slice(-3).map((request) => request.status)).toEqual([503, 503, 200]);
  });

  it("rations GETs as Docker Hub does: its headers on every answer, HEADs free, 429 with Retry-After once spent, whole again in the next window", async () => {
    const remove = proxy.addRule({ path: /\/manifests\//, fault: { type: 'budget', limit: 2, windowSeconds: 1, free: ['HEAD'] } });
    const url = `${proxy.url}/v2/smoke/proxy/manifests/single`;
    const answer = async (method: string) => {
      const response = await fetch(url, { method, headers: { accept: OCI_MEDIA_TYPES.manifest } });
      await response.arrayBuffer();
      return [response.status, response.headers.get('ratelimit-limit'), response.headers.get('ratelimit-remaining'), response.headers.get('retry-after')];
    };
    const answers = [await answer('GET'), await answer('HEAD'), await answer('GET'), await answer('GET'), await answer('HEAD')];
    await sleep(1_100);
    answers.push(await answer('GET'));
    remove();
    expect(answers).toEqual([
      [200, '2;w=1', '1;w=1', null],
      [200, '2;w=1', '1;w=1', null],
      [200, '2;w=1', '0;w=1', null],
      [429, '2;w=1', '0;w=1', '1'],
      [200, '2;w=1', '0;w=1', null],
      [200, '2;w=1', '1;w=1', null],
    ]);
  });

  it('corrupts a blob body without changing its length', async () => {
    const remove = proxy.addRule({ path: /\/blobs\/sha256:/, fault: { type: 'corrupt' } });
    const corrupted = new Uint8Array(await (await fetch(sharedBlobUrl)).arrayBuffer());
    remove();
    const intact = new Uint8Array(await (await fetch(sharedBlobUrl)).arrayBuffer());
    expect(corrupted.length).toBe(sharedLayer.size);
    expect(sha256(corrupted)).not.toBe(sharedDigest);
    expect(sha256(intact)).toBe(sharedDigest);
  });

  it('resets connections before answering and mid-body', async () => {
    proxy.addRule({ path: /^\/v2\/$/, fault: { type: 'reset' }, times: 1 });
    await expect(fetch(`${proxy.url}/v2/`)).rejects.toThrow();
    expect(proxy.requests.at(-1)).toMatchObject({ path: '/v2/', status: 0 });

    proxy.addRule({ path: /\/blobs\//, fault: { type: 'resetAfterBytes', bytes: 1000 }, times: 1 });
    const response = await fetch(sharedBlobUrl);
    expect(response.status).toBe(200);
    await expect(response.arrayBuffer()).rejects.toThrow();
  });

  it('holds a request until released and reports it on arrival', async () => {
    const held = proxy.hold({ path: /^\/v2\/$/ });
    let settled = false;
    const pending = fetch(`${proxy.url}/v2/`).finally(() => (settled = true));
    expect(proxy.requests[await held.arrived]!.path).toBe('/v2/');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    held.release();
    expect((await pending).status).toBe(200);
  });

  it('streams uploads and keeps Location pointing at the proxy', async () => {
    const blob = randomBytes(4 * 1024 * 1024);
    const start = await fetch(`${proxy.url}/v2/smoke/proxy/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = start.headers.get('location') ?? '';
    expect(location.startsWith(`${proxy.url}/`)).toBe(true);

    const upload = new URL(location);
    upload.searchParams.set('digest', sha256(blob));
    const put = await fetch(upload, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: blob,
    });
    expect(put.status).toBe(201);
    const head = await fetch(`${proxy.url}/v2/smoke/proxy/blobs/${sha256(blob)}`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(blob.length));
  });
});

describe('postgres', () => {
  it('creates a database usable through its URL, and drop() removes it despite an open connection', async () => {
    const db = await createTestDatabase('Support Test!');
    expect(db.name).toMatch(/^ferry_test_support_test_[0-9a-f]{8}$/);
    const client = new pg.Client({ connectionString: db.url });
    client.on('error', () => {});
    await client.connect();
    try {
      expect((await client.query('SELECT current_database() AS name')).rows).toEqual([{ name: db.name }]);
      await client.query('CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)');
      await client.query('INSERT INTO notes VALUES ($1, $2), ($3, $4)', [1, 'one', 2, 'two']);
      expect((await client.query('SELECT id, body FROM notes ORDER BY id')).rows).toEqual([
        { id: 1, body: 'one' },
        { id: 2, body: 'two' },
      ]);
      await db.drop();
    } finally {
      await client.end().catch(() => {});
    }

    const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await admin.connect();
    try {
      const left = await admin.query('SELECT datname FROM pg_database WHERE datname = $1', [db.name]);
      expect(left.rows).toEqual([]);
    } finally {
      await admin.end();
    }
  });

  it('fails, saying what to do, when PostgreSQL cannot be reached', async () => {
    const nowhere = `postgres://ferry:ferry@127.0.0.1:${await freePort()}/postgres`;
    await expect(createTestDatabase('unreachable', nowhere)).rejects.toThrow(
      /not reachable at postgres:\/\/ferry:\*\*\*@127\.0\.0\.1:\d+\/postgres .*install-test-deps\.sh.*FERRY_TEST_POSTGRES_URL/,
    );
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { environment, ferry, replicate, replicationInput } from './support/ferry.js';
import { writeOciLayout, type BuiltTag } from './support/images.js';
import { DEFAULT_USER, startRegistry, type RunningRegistry } from './support/registry.js';
import { listTags, rawManifest, seedLayout } from './support/skopeo.js';
import { globFilter } from '../src/services/tag-filter.js';

const LARGE = 3 * 1024 * 1024 + 123;

let layout: string;
let built: Record<string, BuiltTag>;
let source: RunningRegistry;
let destination: RunningRegistry;
let basicAuth: RunningRegistry;
let tokenAuth: RunningRegistry;
let sourceProxy: FaultProxy;
let destinationProxy: FaultProxy;

beforeAll(async () => {
  layout = await mkdtemp(join(tmpdir(), 'ferry-failures-'));
  [built, source, destination, basicAuth, tokenAuth] = await Promise.all([
    writeOciLayout(layout, {
      a: { layers: [{ size: 30_000, seed: 'fail-a' }, { size: 200_000, seed: 'fail-shared' }] },
      b: { layers: [{ size: 40_000, seed: 'fail-b' }, { size: 200_000, seed: 'fail-shared' }] },
      large: { layers: [{ size: LARGE, seed: 'fail-large' }] },
    }),
    startRegistry(),
    startRegistry(),
    startRegistry({ auth: 'htpasswd' }),
    startRegistry({ auth: 'token' }),
  ]);
  await Promise.all([
    seedLayout(layout, ['a', 'b', 'large'], { host: source.host, repository: 'fail/app' }),
    seedLayout(layout, ['a', 'b'], { host: basicAuth.host, repository: 'private/app', creds: DEFAULT_USER }),
    seedLayout(layout, ['a', 'b'], { host: tokenAuth.host, repository: 'private/app', creds: DEFAULT_USER }),
  ]);
  [sourceProxy, destinationProxy] = await Promise.all([startFaultProxy(source.host), startFaultProxy(destination.host)]);
});

afterEach(() => {
  sourceProxy.clearRules();
  destinationProxy.clearRules();
});

afterAll(async () => {
  await Promise.all([sourceProxy?.stop(), destinationProxy?.stop()]);
  await Promise.all([source, destination, basicAuth, tokenAuth].map((r) => r?.stop()));
  await rm(layout, { recursive: true, force: true });
});

const creds = `${DEFAULT_USER.username}:${DEFAULT_USER.password}`;

describe('transient failures', () => {
  it('retries 503s with backoff, sends a 429 again after its pause without failing the phase, and finishes with every tag', async () => {
    sourceProxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, times: 2, fault: { type: 'status', status: 503 } });
    destinationProxy.addRule({ method: 'PUT', path: /\/manifests\//, times: 1, fault: { type: 'status', status: 429, headers: { 'retry-after': '0' } } });
    const from = destinationProxy.requests.length;
    const result = await replicate(replicationInput(`${sourceProxy.host}/fail/app`, `${destinationProxy.host}/retry/app`, { tagFilter: globFilter(['a', 'b']), blobConcurrency: 1 }));
    expect(result.status).toBe('finished');
    // The batch retried its transfer twice; the job went on meanwhile.
    expect(result.statuses).toEqual(['pending', 'running', 'finished']);
    expect(result.batchRetries).toEqual(['transferBlob', 'transferBlob']);
    expect(destinationProxy.requests.slice(from).filter((r) => r.method === 'PUT' && /\/manifests\//.test(r.path)).map((r) => r.status)).toEqual([429, 201, 201]);
    for (const tag of ['a', 'b']) {
      expect((await rawManifest({ host: destination.host, repository: 'retry/app', tag })).digest).toBe(built[tag]!.digest);
    }
  });

  describe('chunked uploads', () => {
    const chunked = () => environment({ transfer: { chunkThreshold: 1024 * 1024, chunkSize: 1024 * 1024, maxResumes: 3 } });
    const uploads = (from: number) =>
      destinationProxy.requests.slice(from).filter((r) => r.path.includes('/blobs/uploads/') && r.method !== 'POST' && r.method !== 'DELETE' && !r.path.includes('/blobs/uploads/?'));
    let layer: string;

    beforeAll(async () => {
      const manifest = await rawManifest({ host: source.host, repository: 'fail/app', tag: 'large' });
      layer = (JSON.parse(manifest.bytes.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
    });

    it('reopens the source where it stopped (Range) when it drops mid-blob, without resending a byte', async () => {
      const path = new RegExp(`/blobs/${layer}$`);
      sourceProxy.addRule({ method: 'GET', path, times: 1, fault: { type: 'resetAfterBytes', bytes: 1_500_000 } });
      const before = { source: sourceProxy.requests.length, destination: destinationProxy.requests.length };
      const result = await replicate(replicationInput(`${sourceProxy.host}/fail/app`, `${destinationProxy.host}/resume/source`, { tagFilter: globFilter(['large']) }), chunked());
      expect(result.status).toBe('finished');
      expect(result.batchRetries).toEqual([]);
      const gets = sourceProxy.requests.slice(before.source).filter((r) => path.test(r.path));
      expect(gets.map((r) => r.status)).toEqual([200, 206]);
      const layerUploads = uploads(before.destination).filter((r) => r.method === 'PATCH' || r.path.includes(`digest=${encodeURIComponent(layer)}`));
      expect(layerUploads.map((r) => r.method)).toEqual(['PATCH', 'PATCH', 'PATCH', 'PATCH', 'PUT']);
      expect((await rawManifest({ host: destination.host, repository: 'resume/source', tag: 'large' })).digest).toBe(built.large!.digest);
    });

    it('sends a failed chunk again from the offset the registry reports', async () => {
      destinationProxy.addRule({ method: 'PATCH', path: /\/blobs\/uploads\//, times: 1, fault: { type: 'status', status: 503 } });
      const before = destinationProxy.requests.length;
      const result = await replicate(replicationInput(`${sourceProxy.host}/fail/app`, `${destinationProxy.host}/resume/destination`, { tagFilter: globFilter(['large']) }), chunked());
      expect(result.status).toBe('finished');
      expect(result.batchRetries).toEqual([]);
      const chunkRequests = uploads(before).filter((r) => r.method !== 'PUT' || r.path.includes(encodeURIComponent(layer)));
      expect(chunkRequests.map((r) => `${r.method} ${r.status}`)).toEqual(['PATCH 503', 'GET 204', 'PATCH 202', 'PATCH 202', 'PATCH 202', 'PATCH 202', 'PUT 201']);
      expect((await rawManifest({ host: destination.host, repository: 'resume/destination', tag: 'large' })).digest).toBe(built.large!.digest);
    });

    it('starts the blob again through its batch\'s retry when the registry dropped the upload session', async () => {
      destinationProxy.addRule({ method: 'PATCH', path: /\/blobs\/uploads\//, times: 1, fault: { type: 'status', status: 503 } });
      destinationProxy.addRule({ method: 'GET', path: /\/blobs\/uploads\//, times: 1, fault: { type: 'status', status: 404, body: '{"errors":[{"code":"BLOB_UPLOAD_INVALID"}]}' } });
      const result = await replicate(replicationInput(`${sourceProxy.host}/fail/app`, `${destinationProxy.host}/resume/restart`, { tagFilter: globFilter(['large']) }), chunked());
      expect(result.status).toBe('finished');
      expect(result.batchRetries).toEqual(['transferBlob']);
      expect((await rawManifest({ host: destination.host, repository: 'resume/restart', tag: 'large' })).digest).toBe(built.large!.digest);
    });
  });

  it('gives up after the attempt limit with the last error', async () => {
    sourceProxy.addRule({ path: /\/manifests\//, fault: { type: 'status', status: 502 } });
    const result = await replicate(
      replicationInput(`${sourceProxy.host}/fail/app`, `${destinationProxy.host}/exhausted/app`, { tagFilter: globFilter(['a']), retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } }),
    );
    expect(result.status).toBe('error');
    expect(result.actor.getSnapshot().context.error?.message).toMatch(/^gave up after 3 attempts: GET manifest 127\.0\.0\.1:\d+\/fail\/app:a: 502/);
  });
});

describe('a refused upload session', () => {
  it("lets go of the source blob it was reading, and fails the tag with the registry's reason", async () => {
    // The check's session goes through; the transfer's are refused while their source GETs answer.
    destinationProxy.addRule({ method: 'POST', path: /\/blobs\/uploads\/$/, times: 1, fault: { type: 'delay', ms: 0 } });
    destinationProxy.addRule({ method: 'POST', path: /\/blobs\/uploads\/$/, fault: { type: 'status', status: 403, body: '{"errors":[{"code":"DENIED","message":"no uploads"}]}' } });
    const from = sourceProxy.requests.length;
    const result = await replicate(replicationInput(`${sourceProxy.host}/fail/app`, `${destinationProxy.host}/refused/session`, { tagFilter: globFilter(['a']) }));
    expect(sourceProxy.requests.slice(from).filter((r) => r.method === 'GET' && r.path.includes('/blobs/') && r.status === 200).length).toBeGreaterThan(0);
    expect(result.status).toBe('finished');
    expect(result.actor.getSnapshot().context.progress).toMatchObject({ tagsFailed: 1, tagsCopied: 0 });
    const failed = result.events.flatMap((e) => (e.type === 'tag.failed' ? [e.error.message] : []));
    expect(failed).toEqual([expect.stringMatching(/^start upload to 127\.0\.0\.1:\d+\/refused\/session: 403 DENIED/)]);
  });
});

describe('bad content', () => {
  it('fails with the digest when the source serves a blob whose bytes do not match, and pushes nothing', async () => {
    const layer = built.a!.blobs.find((d) => !built.b!.blobs.includes(d) && d !== built.a!.blobs[0])!;
    sourceProxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, fault: { type: 'corrupt' } });
    const result = await ferry(['copy', `${sourceProxy.host}/fail/app:a`, `${destinationProxy.host}/corrupt/app:a`]);
    expect(result.code).toBe(1);
    // The tag fails alone: the job finishes, names it, and says why.
    expect(result.stdout).toMatch(/^failed {5}a  sha256:[0-9a-f]{64}  GET blob 127\.0\.0\.1:\d+\/fail\/app@sha256:[0-9a-f]{64}: content has digest sha256:[0-9a-f]{64}$/m);
    expect(result.stdout).toMatch(/^finished: 1 tag \(0 copied, 0 unchanged, 1 failed\);/m);
    expect(result.stderr).toMatch(/^failed: a \(/m);
    expect(await listTags({ host: destination.host, repository: 'corrupt/app' })).toEqual([]);
    const head = await fetch(`${destination.url}/v2/corrupt/app/blobs/${layer}`, { method: 'HEAD' });
    expect(head.status).toBe(404);
  });

  it('fails on a malformed manifest and names it', async () => {
    sourceProxy.addRule({ method: 'GET', path: /\/manifests\//, fault: { type: 'status', status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': 'sha256:0000000000000000000000000000000000000000000000000000000000000000' }, body: '{"schemaVersion": 2' } });
    const result = await ferry(['copy', `${sourceProxy.host}/fail/app:a`, `${destinationProxy.host}/malformed/app:a`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^failed {5}a  sha256:[0-9a-f]{64}  GET manifest 127\.0\.0\.1:\d+\/fail\/app@sha256:[0-9a-f]{64}: content has digest/m);
    expect(await listTags({ host: destination.host, repository: 'malformed/app' })).toEqual([]);
  });
});

describe('auth', () => {
  it('copies from a registry with Basic auth using --src-creds', async () => {
    const result = await ferry(['copy', `${basicAuth.host}/private/app`, `${destination.host}/from-basic/app`, '--src-creds', creds]);
    expect(result.code, result.stderr).toBe(0);
    expect((await listTags({ host: destination.host, repository: 'from-basic/app' })).sort()).toEqual(['a', 'b']);
  });

  it('copies from and to a token-auth registry, reusing tokens across requests', async () => {
    const before = tokenAuth.tokenRequests!;
    const result = await ferry(['copy', `${tokenAuth.host}/private/app`, `${tokenAuth.host}/copied/app`], {
      FERRY_SRC_CREDS: creds,
      FERRY_DEST_CREDS: creds,
    });
    expect(result.code, result.stderr).toBe(0);
    expect((await rawManifest({ host: tokenAuth.host, repository: 'copied/app', tag: 'a', creds: DEFAULT_USER })).digest).toBe(built.a!.digest);
    // pull on the source, pull+push on the destination, and the mount's combined scope.
    expect(tokenAuth.tokenRequests! - before).toBeLessThanOrEqual(4);
  });

  it('reads credentials from ~/.docker/config.json', async () => {
    const home = await mkdtemp(join(tmpdir(), 'ferry-home-'));
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(join(home, '.docker'));
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [basicAuth.host]: { auth: Buffer.from(creds).toString('base64') } } }));
    const result = await ferry(['copy', `${basicAuth.host}/private/app:a`, `${destination.host}/from-config/app:a`], { HOME: home });
    await rm(home, { recursive: true, force: true });
    expect(result.code, result.stderr).toBe(0);
  });

  for (const [name, registry] of [['Basic', () => basicAuth], ['token', () => tokenAuth]] as const) {
    it(`says which credentials were refused by a ${name} registry, and never prints the password`, async () => {
      const result = await ferry(['copy', `${registry().host}/private/app:a`, `${destination.host}/refused/app:a`, '--src-creds', 'ferry:wrong-password-123']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`credentials for ${registry().host.replace(/\./g, '\\.')} were refused`));
      expect(result.stdout + result.stderr).not.toContain('wrong-password-123');
    });
  }

  it('says a registry needs credentials when none are given', async () => {
    const result = await ferry(['copy', `${basicAuth.host}/private/app:a`, `${destination.host}/anonymous/app:a`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${basicAuth.host} needs credentials`);
  });
});

describe('bad input', () => {
  it('an unknown tag is an error that names it', async () => {
    const result = await ferry(['copy', `${source.host}/fail/app:nope`, `${destination.host}/unknown/app:nope`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`failed     nope  -  ${source.host}/fail/app:nope: manifest not found on the source\n`);
    expect(result.stderr).toContain('failed: nope (');
  });

  it('an unknown repository is an error that names it', async () => {
    const result = await ferry(['copy', `${source.host}/no/such/repo`, `${destination.host}/unknown/repo`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`error: list tags of ${source.host.replace(/\./g, '\\.')}/no/such/repo: 404 NAME_UNKNOWN`));
  });

  it('an unreachable host fails after the retries with "connection refused"', async () => {
    const result = await ferry(['copy', '127.0.0.1:1/some/app:a', `${destination.host}/unreachable/app:a`, '--retries', '1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/retrying in .* \(attempt 1 of 1\): .*connection refused/);
    expect(result.stderr).toMatch(/^error: gave up after 2 attempts: .*127\.0\.0\.1:1.*connection refused \(ECONNREFUSED\)$/m);
  });

  for (const [what, args] of [
    ['a malformed reference', ['copy', 'Not A Reference!', 'localhost:5000/x']],
    ['a missing destination', ['copy', 'localhost:5000/x']],
    ['an unknown option', ['copy', 'localhost:5000/x', 'localhost:5001/x', '--bogus']],
    ['a tag filter on a single tag', ['copy', 'localhost:5000/x:1', 'localhost:5001/x', '--tags', '1*']],
    ['a bad platform', ['copy', 'localhost:5000/x', 'localhost:5001/x', '--platform', 'amd64']],
    ['a destination digest', ['copy', 'localhost:5000/x:1', `localhost:5001/x@sha256:${'a'.repeat(64)}`]],
  ] as const) {
    it(`${what} is a usage error (exit 2)`, async () => {
      const result = await ferry([...args]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^ferry: .+ \(see ferry copy --help\)\n$/);
    });
  }
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { digestOf } from './digest.js';
import { RegistryError } from './errors.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  MANIFEST_ACCEPT,
  OCI_INDEX,
  OCI_MANIFEST,
  isIndexMediaType,
  parseManifest,
} from './media-types.js';
import type { ParsedManifest } from './media-types.js';

const WHAT = 'GET manifest r.example.com/org/app:1.0';
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const CONFIG = 'application/vnd.oci.image.config.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';

const d = (seed: string): string => digestOf(Buffer.from(seed));
const bytes = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

function image(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: CONFIG, digest: d('config'), size: 120 },
    layers: [
      { mediaType: LAYER, digest: d('layer-0'), size: 1000 },
      { mediaType: LAYER, digest: d('layer-1'), size: 0, annotations: { a: 'b' } },
    ],
    ...overrides,
  };
}

function index(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { mediaType: OCI_MANIFEST, digest: d('amd64'), size: 500, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: OCI_MANIFEST, digest: d('arm64'), size: 501, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
    ...overrides,
  };
}

function without<T extends Record<string, unknown>>(value: T, key: string): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...value };
  delete copy[key];
  return copy;
}

function parseError(input: Uint8Array, contentType?: string): RegistryError {
  try {
    parseManifest(input, contentType, WHAT);
  } catch (error) {
    expect(error).toBeInstanceOf(RegistryError);
    return error as RegistryError;
  }
  throw new Error('parseManifest accepted the input');
}

describe('parseManifest: accepted documents', () => {
  it('reads an OCI image manifest: config and layers in order, extra fields dropped', () => {
    expect(parseManifest(bytes(image()), OCI_MANIFEST, WHAT)).toEqual<ParsedManifest>({
      kind: 'image',
      mediaType: OCI_MANIFEST,
      config: { mediaType: CONFIG, digest: d('config'), size: 120 },
      layers: [
        { mediaType: LAYER, digest: d('layer-0'), size: 1000 },
        { mediaType: LAYER, digest: d('layer-1'), size: 0 },
      ],
    });
  });

  it('reads a Docker v2 image manifest', () => {
    const doc = image({
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, digest: d('c'), size: 7 },
      layers: [{ mediaType: DOCKER_LAYER, digest: d('l'), size: 9 }],
    });
    expect(parseManifest(bytes(doc), DOCKER_MANIFEST, WHAT)).toEqual<ParsedManifest>({
      kind: 'image',
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, digest: d('c'), size: 7 },
      layers: [{ mediaType: DOCKER_LAYER, digest: d('l'), size: 9 }],
    });
  });

  it('reads an OCI index with platforms, keeping a variant only when present', () => {
    expect(parseManifest(bytes(index()), OCI_INDEX, WHAT)).toEqual<ParsedManifest>({
      kind: 'index',
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: d('amd64'), size: 500, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: OCI_MANIFEST, digest: d('arm64'), size: 501, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    });
  });

  it('reads a Docker manifest list, dropping an incomplete platform', () => {
    const doc = {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST_LIST,
      manifests: [
        { mediaType: DOCKER_MANIFEST, digest: d('a'), size: 1, platform: { os: 'linux' } },
        { mediaType: DOCKER_MANIFEST, digest: d('b'), size: 2, platform: { os: 'windows', architecture: 'amd64', variant: 3 } },
      ],
    };
    const parsed = parseManifest(bytes(doc), DOCKER_MANIFEST_LIST, WHAT);
    expect(parsed).toEqual<ParsedManifest>({
      kind: 'index',
      mediaType: DOCKER_MANIFEST_LIST,
      manifests: [
        { mediaType: DOCKER_MANIFEST, digest: d('a'), size: 1 },
        { mediaType: DOCKER_MANIFEST, digest: d('b'), size: 2, platform: { os: 'windows', architecture: 'amd64' } },
      ],
    });
    expect(parsed.kind === 'index' && 'platform' in parsed.manifests[0]!).toBe(false);
  });

  it('accepts an empty index and an image without layers', () => {
    expect(parseManifest(bytes(index({ manifests: [] })), undefined, WHAT)).toEqual({ kind: 'index', mediaType: OCI_INDEX, manifests: [] });
    const parsed = parseManifest(bytes(image({ layers: [] })), undefined, WHAT);
    expect(parsed.kind === 'image' && parsed.layers).toEqual([]);
  });

  it('takes the media type from Content-Type (parameters ignored) when the document has none', () => {
    const doc = without(image({ config: { mediaType: DOCKER_CONFIG, digest: d('c'), size: 7 } }), 'mediaType');
    expect(parseManifest(bytes(doc), `${DOCKER_MANIFEST}; charset=utf-8`, WHAT).mediaType).toBe(DOCKER_MANIFEST);
    const list = without(index(), 'mediaType');
    const parsed = parseManifest(bytes(list), ` ${DOCKER_MANIFEST_LIST} `, WHAT);
    expect(parsed).toMatchObject({ kind: 'index', mediaType: DOCKER_MANIFEST_LIST });
  });

  it('infers OCI types from the shape when neither the document nor Content-Type names one', () => {
    expect(parseManifest(bytes(without(index(), 'mediaType')), 'application/json', WHAT)).toMatchObject({ kind: 'index', mediaType: OCI_INDEX });
    expect(parseManifest(bytes(without(image(), 'mediaType')), undefined, WHAT)).toMatchObject({ kind: 'image', mediaType: OCI_MANIFEST });
  });

  it("lets the document's own mediaType win over Content-Type", () => {
    expect(parseManifest(bytes(index()), DOCKER_MANIFEST, WHAT)).toMatchObject({ kind: 'index', mediaType: OCI_INDEX });
  });

  it('accepts sha512 descriptor digests', () => {
    const doc = image({ layers: [{ mediaType: LAYER, digest: digestOf(Buffer.from('x'), 'sha512'), size: 1 }] });
    const parsed = parseManifest(bytes(doc), undefined, WHAT);
    expect(parsed.kind === 'image' && parsed.layers[0]?.digest).toMatch(/^sha512:[0-9a-f]{128}$/);
  });

  it('accepts UTF-8 bytes with non-ASCII annotations', () => {
    const doc = image({ annotations: { 'org.opencontainers.image.title': 'Grüße 🚢' } });
    expect(parseManifest(Buffer.from(JSON.stringify(doc), 'utf8'), undefined, WHAT).kind).toBe('image');
  });
});

describe('parseManifest: rejected documents', () => {
  it.each<[string, Uint8Array, RegExp]>([
    ['invalid JSON', Buffer.from('{"schemaVersion": 2,'), /manifest is not JSON/],
    ['empty bytes', Buffer.alloc(0), /manifest is not JSON/],
    ['a JSON array', bytes([image()]), /is not a JSON object/],
    ['JSON null', bytes(null), /is not a JSON object/],
    ['a JSON string', bytes('{}'), /is not a JSON object/],
    ['schemaVersion 1', bytes(image({ schemaVersion: 1 })), /has schemaVersion 1, expected 2/],
    ['schemaVersion "2"', bytes(image({ schemaVersion: '2' })), /has schemaVersion "2", expected 2/],
    ['no schemaVersion', bytes(without(image(), 'schemaVersion')), /has schemaVersion undefined, expected 2/],
    ['no media type and no recognisable shape', bytes({ schemaVersion: 2, config: {} }), /has no recognisable media type/],
    ['an index without manifests', bytes(without(index(), 'manifests')), /index without a "manifests" array/],
    ['an image without layers', bytes(without(image(), 'layers')), /image manifest without a "layers" array/],
    ['an image without config', bytes(without(image(), 'config')), /config is not an object/],
    ['a layer that is not an object', bytes(image({ layers: ['sha256:abc'] })), /layers\[0\] is not an object/],
    ['a descriptor without mediaType', bytes(image({ config: { digest: d('c'), size: 1 } })), /config\.mediaType is missing/],
    ['a short digest', bytes(image({ layers: [{ mediaType: LAYER, digest: 'sha256:abc', size: 1 }] })), /layers\[0\]\.digest "sha256:abc" is not a digest/],
    ['an upper-case digest', bytes(image({ config: { mediaType: CONFIG, digest: d('c').toUpperCase(), size: 1 } })), /config\.digest .* is not a digest/],
    ['an unknown digest algorithm', bytes(index({ manifests: [{ mediaType: OCI_MANIFEST, digest: `md5:${'0'.repeat(32)}`, size: 1 }] })), /manifests\[0\]\.digest/],
    ['a missing digest', bytes(image({ config: { mediaType: CONFIG, size: 1 } })), /config\.digest undefined is not a digest/],
    ['a negative size', bytes(image({ layers: [{ mediaType: LAYER, digest: d('l'), size: -1 }] })), /layers\[0\]\.size -1 is not a non-negative integer/],
    ['a fractional size', bytes(image({ layers: [{ mediaType: LAYER, digest: d('l'), size: 1.5 }] })), /layers\[0\]\.size 1\.5/],
    ['a string size', bytes(image({ config: { mediaType: CONFIG, digest: d('c'), size: '10' } })), /config\.size "10"/],
    ['an unsafe integer size', bytes(image({ config: { mediaType: CONFIG, digest: d('c'), size: 2 ** 53 } })), /config\.size 9007199254740992/],
    ['a missing size', bytes(index({ manifests: [{ mediaType: OCI_MANIFEST, digest: d('m') }] })), /manifests\[0\]\.size undefined/],
    ['a bad second layer', bytes(image({ layers: [{ mediaType: LAYER, digest: d('ok'), size: 1 }, { mediaType: LAYER, digest: 'nope', size: 1 }] })), /layers\[1\]\.digest "nope"/],
  ])('rejects %s with INVALID_MANIFEST naming the request', (_name, input, problem) => {
    const error = parseError(input);
    expect(error.code).toBe('INVALID_MANIFEST');
    expect(error.transient).toBe(false);
    expect(error.message.startsWith(`${WHAT}: manifest `)).toBe(true);
    expect(error.message).toMatch(problem);
  });

  it('rejects a deeply nested document as INVALID_MANIFEST without overflowing the stack', () => {
    const depth = 200_000;
    expect(parseError(Buffer.from('['.repeat(depth) + ']'.repeat(depth))).code).toBe('INVALID_MANIFEST');
  });

  it.each([
    'application/vnd.docker.distribution.manifest.v1+prettyjws',
    'application/vnd.oci.artifact.manifest.v1+json',
    'application/json',
  ])('answers UNSUPPORTED for the declared media type %s', (mediaType) => {
    const error = parseError(bytes(image({ mediaType })));
    expect(error.code).toBe('UNSUPPORTED');
    expect(error.message).toBe(`${WHAT}: media type ${mediaType} is not supported (only OCI and Docker v2 manifests and indexes)`);
  });

  it('does not trust an unknown Content-Type over the document shape', () => {
    const parsed = parseManifest(bytes(without(image(), 'mediaType')), 'application/vnd.example.thing+json', WHAT);
    expect(parsed.mediaType).toBe(OCI_MANIFEST);
  });
});

describe('media type helpers', () => {
  it('classifies index types', () => {
    expect([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST].map(isIndexMediaType)).toEqual([true, true, false, false]);
  });

  it('accepts all four manifest types', () => {
    expect(MANIFEST_ACCEPT.split(', ').sort()).toEqual([DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST].sort());
  });
});

describe('parseManifest properties', () => {
  const anyContentType = fc.option(
    fc.oneof(fc.constantFrom(OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, 'application/json', ''), fc.string()),
    { nil: undefined },
  );

  /** Returns normally or throws a RegistryError saying the manifest is invalid or unsupported: nothing else. */
  function parsesOrRefuses(input: Uint8Array, contentType: string | undefined): void {
    try {
      const parsed = parseManifest(input, contentType, WHAT);
      expect(['index', 'image']).toContain(parsed.kind);
    } catch (error) {
      expect(error).toBeInstanceOf(RegistryError);
      expect(['INVALID_MANIFEST', 'UNSUPPORTED']).toContain((error as RegistryError).code);
    }
  }

  it('never throws anything but a RegistryError on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), anyContentType, parsesOrRefuses), { numRuns: 500 });
  });

  it('never throws anything but a RegistryError on arbitrary JSON', () => {
    const json = fc.jsonValue({ maxDepth: 4 }).map((value) => bytes(value));
    fc.assert(fc.property(json, anyContentType, parsesOrRefuses), { numRuns: 500 });
  });

  it('never throws anything but a RegistryError on manifests with arbitrary field values', () => {
    const anything = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined));
    const descriptorLike = fc.record(
      { mediaType: anything, digest: fc.oneof(fc.constant(d('x')), anything), size: fc.oneof(fc.nat(), fc.double(), anything), platform: anything },
      { requiredKeys: [] },
    );
    const manifestLike = fc.record(
      {
        schemaVersion: fc.oneof(fc.constant(2), anything),
        mediaType: fc.oneof(fc.constantFrom(OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST), anything),
        config: fc.oneof(descriptorLike, anything),
        layers: fc.oneof(fc.array(descriptorLike, { maxLength: 3 }), anything),
        manifests: fc.oneof(fc.array(descriptorLike, { maxLength: 3 }), anything),
      },
      { requiredKeys: [] },
    );
    fc.assert(fc.property(manifestLike.map(bytes), anyContentType, parsesOrRefuses), { numRuns: 1000 });
  });

  it('returns exactly the descriptors of any valid image manifest', () => {
    const descriptor = fc.record({
      mediaType: fc.string(),
      digest: fc.uint8Array({ maxLength: 16 }).map((seed) => digestOf(seed)),
      size: fc.maxSafeNat(),
    });
    fc.assert(
      fc.property(descriptor, fc.array(descriptor, { maxLength: 5 }), (config, layers) => {
        const parsed = parseManifest(bytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }), undefined, WHAT);
        expect(parsed).toEqual({ kind: 'image', mediaType: OCI_MANIFEST, config, layers });
      }),
    );
  });
});

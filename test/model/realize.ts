import type { ReplicationFixture } from '../support/fixture.js';
import type { Realization } from './drive.js';

/**
 * How the replication machine's events are made to happen on the fixture's registries: the
 * request that shows each phase is under way, and each failure as a 503 or a reset
 * (transient), a refusal or a corrupt blob (permanent).
 */
export function replicationRealization(fixture: ReplicationFixture, dryRun: boolean, items: string[]): Realization {
  const { sourceProxy: source, destinationProxy: destination } = fixture;
  const markers: Record<string, (item: number) => ReturnType<Realization['marker']>> = {
    initialize: () => ({ proxy: source, method: 'GET', path: /\/model\/app\/tags\/list\?n=\d{2,}$/ }),
    check: () => (dryRun ? { proxy: source, method: 'GET', path: /\/model\/app\/tags\/list\?n=1$/ } : { proxy: destination, method: 'POST', path: /\/blobs\/uploads\/$/ }),
    // A target the destination lacks is fetched by GET at once, one it has HEADed first.
    pullManifest: (item) => ({ proxy: source, path: new RegExp(`/model/app/manifests/${items[item]}$`) }),
    transferBlob: () => ({ proxy: source, method: 'GET', path: /\/model\/app\/blobs\/sha256:/ }),
    pushManifest: () => ({ proxy: destination, method: 'PUT', path: /\/manifests\/[\w.-]+$/ }),
  };
  const refusals: Record<string, ReturnType<Realization['failure']>> = {
    // A 401 is not used: a 401 without a challenge leaves the job hanging (reported, see the client's send).
    initialize: { fault: { type: 'status', status: 403 }, code: 'DENIED' },
    check: { fault: { type: 'status', status: 403, body: '{"errors":[{"code":"DENIED","message":"no push"}]}' }, code: 'DENIED' },
    pullManifest: { fault: { type: 'status', status: 404 }, code: 'NOT_FOUND' },
    transferBlob: { fault: { type: 'corrupt' }, code: 'DIGEST_MISMATCH' },
    pushManifest: { fault: { type: 'status', status: 400, body: '{"errors":[{"code":"MANIFEST_INVALID","message":"no"}]}' }, code: 'INVALID_MANIFEST' },
  };
  return {
    marker: (phase, item) => markers[phase]!(item),
    failure: (phase, kind, longWait) => {
      if (kind === 'permanent') return refusals[phase]!;
      if (kind === 'exhausted') return { fault: { type: 'reset' }, code: 'NETWORK' };
      return { fault: { type: 'status', status: 503, ...(longWait ? { headers: { 'retry-after': '600' } } : {}) }, code: 'SERVER_ERROR' };
    },
  };
}


import type { ReplicationFixture } from '../support/fixture.js';
import type { Realization } from './drive.js';

/**
 * How the replication and batch machines' events are made to happen on the fixture's
 * registries: the request that shows each phase is under way (in the job's `copying`, its
 * batch's first), and each failure as a 503 or a reset (transient), or a refusal (permanent).
 */
export function replicationRealization(fixture: ReplicationFixture, dryRun: boolean, items: string[]): Realization {
  const { sourceProxy: source, destinationProxy: destination } = fixture;
  const markers: Record<string, (item: number) => ReturnType<Realization['marker']>> = {
    initialize: () => ({ proxy: source, method: 'GET', path: /\/model\/app\/tags\/list\?n=\d{2,}$/ }),
    check: () => (dryRun ? { proxy: source, method: 'GET', path: /\/model\/app\/tags\/list\?n=1$/ } : { proxy: destination, method: 'POST', path: /\/blobs\/uploads\/$/ }),
    // A target the destination lacks is fetched by GET at once, one it has HEADed first.
    pullManifest: (item) => ({ proxy: source, path: new RegExp(`/model/app/manifests/${items[item]}$`) }),
    copying: (item) => markers.pullManifest!(item),
    transferBlob: () => ({ proxy: source, method: 'GET', path: /\/model\/app\/blobs\/sha256:/ }),
    pushManifest: () => ({ proxy: destination, method: 'PUT', path: /\/manifests\/[\w.-]+$/ }),
  };
  // A refusal that concerns one tag (its manifest or blob missing, corrupt or refused) fails that
  // tag alone and the job goes on; what ends a job is what concerns them all: access refused,
  // credentials no longer accepted.
  const revoked = { fault: { type: 'status', status: 401, body: '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}' }, code: 'UNAUTHORIZED' } as const;
  const refusals: Record<string, ReturnType<Realization['failure']>> = {
    initialize: { fault: { type: 'status', status: 403 }, code: 'DENIED' },
    check: { fault: { type: 'status', status: 403, body: '{"errors":[{"code":"DENIED","message":"no push"}]}' }, code: 'DENIED' },
    pullManifest: revoked,
    transferBlob: revoked,
    pushManifest: revoked,
    copying: revoked,
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


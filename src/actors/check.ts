import { phase } from './phase.js';
import { openRepository, type JobRuntime } from '../services/job-runtime.js';
import { responseError } from '../services/registry/client.js';
import { cancelUpload, startUpload } from '../services/registry/upload.js';
import type { Location } from './types.js';

export interface CheckInput {
  source: Location;
  destination: Location;
  /**
   * Prove the source readable: not needed when initialize has just listed its tags, except
   * in a dry run, where reading is all there is to prove.
   */
  read: boolean;
  /** A dry run proves only that it can read. */
  write: boolean;
}

/** Fails early, with the reason, when the source cannot be read or the destination written. */
export const checkAccess = (runtime: JobRuntime) =>
  phase<void, CheckInput>(runtime, async ({ input, signal }) => {
    if (input.read) {
      const source = await openRepository(runtime, input.source, 'pull', signal);
      const what = `read access to ${source.ref()}`;
      const response = await source.client.send({ method: 'GET', url: `${source.path('tags/list')}?n=1`, scopes: source.scopes, what, signal });
      if (response.statusCode !== 200) throw await responseError(response, what);
      await response.body.dump();
    }
    if (!input.write) return;
    const destination = await openRepository(runtime, input.destination, 'push', signal);
    const upload = await startUpload(destination, { signal });
    // The session proved the access: the job goes on while it is cancelled, a round trip sooner
    // over a far link. Whoever closes the clients or exits waits for it (Cleanups).
    if (!upload.mounted) void runtime.cleanups.track(cancelUpload(destination, upload.location));
  });

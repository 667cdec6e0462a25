// The job vocabulary as the service's machines define it (statuses, and which of them STOP
// and RETRY apply to), fetched once per page load rather than restated here.

import { get } from './api.js';

/**
 * @typedef {{ jobStatuses: string[], executionStatuses: string[], active: Set<string>, retryable: Set<string>, ended: Set<string> }} Vocabulary
 */

/** @type {Promise<Vocabulary> | undefined} */
let loaded;

/** @returns {Promise<Vocabulary>} */
export function vocabulary() {
  if (!loaded) {
    loaded = get('/vocabulary').then((words) => ({ ...words, active: new Set(words.active), retryable: new Set(words.retryable), ended: new Set(words.ended) }));
    // Not kept when it failed (no token yet, the service away): the next page asks again.
    loaded.catch(() => (loaded = undefined));
  }
  return loaded;
}

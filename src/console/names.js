// Names where a person reads them, for the ids the API gives: policies and registries.

import { all } from './api.js';

/** @returns {Promise<Map<string, string>>} */
export async function policyNames() {
  return new Map((await all('/policies')).map((policy) => [policy.id, policy.name]));
}

/** The registry a job's `host/repository` lies in. @param {string} reference @param {any[]} registries */
export const registryOf = (reference, registries) => registries.find((registry) => reference.startsWith(`${registry.url}/`));

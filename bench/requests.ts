import type { FaultProxy } from '../test/support/fault-proxy.js';

export interface RequestCount {
  total: number;
  /** e.g. `HEAD manifests`, `GET tags`, `GET /v2/`. */
  byKind: Record<string, number>;
}

function kind(method: string, path: string): string {
  const endpoint = /^\/v2\/.+\/(manifests|blobs|tags)\//.exec(path)?.[1] ?? path.split('?')[0];
  return `${method} ${endpoint}`;
}

/** The requests `work` sends through the proxies (which forward them untouched). */
export async function countRequests(proxies: FaultProxy[], work: () => Promise<unknown>): Promise<RequestCount> {
  for (const proxy of proxies) proxy.requests.length = 0;
  await work();
  const byKind: Record<string, number> = {};
  let total = 0;
  for (const { method, path } of proxies.flatMap((proxy) => proxy.requests)) {
    const key = kind(method, path);
    byKind[key] = (byKind[key] ?? 0) + 1;
    total += 1;
  }
  return { total, byKind };
}

import { abortable } from '../abortable.js';
import { RegistryClient, type RegistryOptions } from './client.js';

const CONNECT_TIMEOUT_MS = 30_000;
/**
 * How long a client serves before the next use connects anew, resolving its login again:
 * credential helpers hand out logins that expire (ECR's after 12 hours, GCR's after one).
 */
const RENEW_AFTER_MS = 10 * 60_000;

export type RegistryResolver = (registry: string) => Promise<RegistryOptions>;

interface Connected {
  client: Promise<RegistryClient>;
  renewAt: number;
}

/**
 * One connected client per registry, created on first use with the resolver's options and
 * shared by every job: a caller's signal ends only its own wait. Jobs holding a client that
 * was renewed finish with it, as with `forget`.
 */
export class Registries {
  readonly #resolve: RegistryResolver;
  readonly #renewAfterMs: number;
  readonly #clients = new Map<string, Connected>();

  constructor(resolve: RegistryResolver, options: { renewAfterMs?: number } = {}) {
    this.#resolve = resolve;
    this.#renewAfterMs = options.renewAfterMs ?? RENEW_AFTER_MS;
  }

  get(registry: string, signal?: AbortSignal): Promise<RegistryClient> {
    let entry = this.#clients.get(registry);
    if (!entry || entry.renewAt <= Date.now()) {
      const client = this.#resolve(registry).then((options) => RegistryClient.connect(options, AbortSignal.timeout(CONNECT_TIMEOUT_MS)));
      const created: Connected = { client, renewAt: Date.now() + this.#renewAfterMs };
      entry = created;
      this.#clients.set(registry, created);
      // A failed connect (host down, stop) is retried on the next use, not remembered.
      client.catch(() => this.#clients.get(registry) === created && this.#clients.delete(registry));
    }
    return abortable(entry.client, signal, `connect to ${registry}`);
  }

  /**
   * Drops a registry's client (its settings changed): the next use connects anew. Jobs
   * holding the old one finish with it; its idle connections time out.
   */
  forget(registry: string): void {
    this.#clients.delete(registry);
  }

  async close(): Promise<void> {
    const clients = await Promise.allSettled([...this.#clients.values()].map((entry) => entry.client));
    this.#clients.clear();
    await Promise.all(clients.map((c) => (c.status === 'fulfilled' ? c.value.close() : undefined)));
  }
}

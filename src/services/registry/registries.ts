import { abortable } from '../abortable.js';
import { RegistryClient, type RegistryOptions } from './client.js';

const CONNECT_TIMEOUT_MS = 30_000;

export type RegistryResolver = (registry: string) => Promise<RegistryOptions>;

/**
 * One connected client per registry, created on first use with the resolver's options and
 * shared by every job: a caller's signal ends only its own wait.
 */
export class Registries {
  readonly #resolve: RegistryResolver;
  readonly #clients = new Map<string, Promise<RegistryClient>>();

  constructor(resolve: RegistryResolver) {
    this.#resolve = resolve;
  }

  get(registry: string, signal?: AbortSignal): Promise<RegistryClient> {
    let client = this.#clients.get(registry);
    if (!client) {
      client = this.#resolve(registry).then((options) => RegistryClient.connect(options, AbortSignal.timeout(CONNECT_TIMEOUT_MS)));
      this.#clients.set(registry, client);
      // A failed connect (host down, stop) is retried on the next use, not remembered.
      client.catch(() => this.#clients.get(registry) === client && this.#clients.delete(registry));
    }
    return abortable(client, signal, `connect to ${registry}`);
  }

  /**
   * Drops a registry's client (its settings changed): the next use connects anew. Jobs
   * holding the old one finish with it; its idle connections time out.
   */
  forget(registry: string): void {
    this.#clients.delete(registry);
  }

  async close(): Promise<void> {
    const clients = await Promise.allSettled(this.#clients.values());
    this.#clients.clear();
    await Promise.all(clients.map((c) => (c.status === 'fulfilled' ? c.value.close() : undefined)));
  }
}

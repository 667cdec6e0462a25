import { abortable } from '../abortable.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { memoryLedger, RegistryLimiter, type BudgetLedger } from './limiter.js';

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

export interface RegistriesOptions {
  renewAfterMs?: number;
  /** Where each registry's budget is kept; null: no limiter, requests go at once and a 429 fails the phase that got it (the bench's baseline). */
  ledger?: BudgetLedger | null;
}

/**
 * One connected client per registry, created on first use with the resolver's options and
 * shared by every job: a caller's signal ends only its own wait. Jobs holding a client that
 * was renewed finish with it, as with `forget`. Each registry's limiter outlives its clients
 * (settings change, the budget does not), its budget kept in the ledger.
 */
export class Registries {
  readonly #resolve: RegistryResolver;
  readonly #renewAfterMs: number;
  readonly #clients = new Map<string, Connected>();
  readonly #ledger: BudgetLedger | null;
  readonly #limiters = new Map<string, RegistryLimiter>();

  constructor(resolve: RegistryResolver, options: RegistriesOptions = {}) {
    this.#resolve = resolve;
    this.#renewAfterMs = options.renewAfterMs ?? RENEW_AFTER_MS;
    this.#ledger = options.ledger === undefined ? memoryLedger() : options.ledger;
  }

  get(registry: string, signal?: AbortSignal): Promise<RegistryClient> {
    let entry = this.#clients.get(registry);
    if (!entry || entry.renewAt <= Date.now()) {
      const client = this.#resolve(registry).then((options) => {
        const limiter = this.limiter(registry);
        limiter?.configure(options.requestsPerSecond ?? null);
        return RegistryClient.connect({ ...options, ...(limiter ? { limiter } : {}) }, AbortSignal.timeout(CONNECT_TIMEOUT_MS));
      });
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

  /** The registry's limiter, which reads what other nodes learnt when it is created. */
  limiter(registry: string): RegistryLimiter | undefined {
    if (!this.#ledger) return undefined;
    let limiter = this.#limiters.get(registry);
    if (!limiter) {
      this.#limiters.set(registry, (limiter = new RegistryLimiter(registry, this.#ledger)));
      void limiter.refresh();
    }
    return limiter;
  }

  /** Adopts what other nodes learnt of these registries' budgets (every registry used here when none is named). */
  refreshBudgets(registries: Iterable<string> = this.#limiters.keys()): void {
    for (const registry of registries) void this.#limiters.get(registry)?.refresh();
  }

  async close(): Promise<void> {
    const clients = await Promise.allSettled([...this.#clients.values()].map((entry) => entry.client));
    this.#clients.clear();
    await Promise.all(clients.map((c) => (c.status === 'fulfilled' ? c.value.close() : undefined)));
  }
}

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { deletionMachine } from '../machines/deletion.js';
import { batchMachine } from '../machines/batch.js';
import { replicationMachine } from '../machines/replication.js';
import { JobControl } from './application/jobs.js';
import { Settings } from './application/settings.js';
import { BlobLocator } from './blob-locator.js';
import { Cleanups } from './cleanups.js';
import { ChangeFeed } from './change-feed.js';
import { InspectorHub } from './inspector/hub.js';
import { Metrics } from './metrics.js';
import { helperLogin } from './registry/credential-helper.js';
import { Registries, type RegistryResolver } from './registry/registries.js';
import type { RegistryOptions } from './registry/client.js';
import { RegistryError } from './registry/errors.js';
import type { BudgetLedger } from './registry/limiter.js';
import { Scheduler } from './scheduler.js';
import { openStore } from './store/open.js';
import type { Keyring } from './store/secrets.js';
import type { NodeId, Registry, Store } from './store/types.js';
import { WorkerPool } from './worker/pool.js';

export interface ServiceOptions {
  /** A SQLite file (created with its directory when missing) or a `postgres://` URL. */
  database: string;
  workers: number;
  logger: Logger;
  /** How long a node holds a job without renewing its lease (default 15 s). */
  leaseMs?: number;
  inspect?: (event: InspectionEvent) => void;
  /** Seals the stored passwords; by default FERRY_SECRET_KEY or the default key file. */
  keyring?: Keyring;
  /** How jobs find a registry's connection settings; by default from its stored settings. */
  registries?: RegistryResolver;
}

export const DEFAULT_LEASE_MS = 15_000;
/** How long the feed keeps changes for clients that resume (`Last-Event-ID`), and how often it is tidied. */
const CHANGES_KEPT_MS = 24 * 60 * 60 * 1000;
const TIDY_EVERY_MS = 10 * 60 * 1000;
/** Cancelling an upload session takes one request; a registry slower than this expires it itself. */
const CLEANUP_WAIT_MS = 5_000;

/** A node's name: where it runs, and unique even for two processes there with the same pid. */
function newNodeId(): NodeId {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * ferry's job service on one node: the store, the registries (credentials from the store),
 * the workers and the scheduler, the feed of job changes on every node, and the commands
 * that stop and retry jobs wherever they run.
 */
export class FerryService {
  readonly node: NodeId;
  readonly store: Store;
  readonly registries: Registries;
  readonly pool: WorkerPool;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  readonly feed: ChangeFeed;
  readonly inspector: InspectorHub;
  readonly control: JobControl;
  readonly settings: Settings;
  readonly metrics: Metrics;
  readonly leaseMs: number;
  readonly #unsubscribe: () => void;
  readonly #cleanups = new Cleanups();

  private constructor(store: Store, feed: ChangeFeed, inspector: InspectorHub, node: NodeId, options: ServiceOptions) {
    this.node = node;
    this.store = store;
    this.feed = feed;
    this.inspector = inspector;
    this.logger = options.logger;
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    const metrics = (this.metrics = new Metrics(store.jobs));
    this.registries = new Registries(options.registries ?? ((url) => registryOptions(store, url)), { ledger: storeLedger(store, node, options.logger), onRequest: (sample) => metrics.request(sample) });
    this.pool = new WorkerPool({
      store,
      node,
      environment: { registries: this.registries, locator: new BlobLocator({ uploads: store.blobUploads, node, staleAfterMs: this.leaseMs }), logger: options.logger, cleanups: this.#cleanups },
      logger: options.logger,
      workers: options.workers,
      leaseMs: this.leaseMs,
      observe: (job) => inspector.observe(job),
      metrics,
      ...(options.inspect ? { inspect: options.inspect } : {}),
    });
    this.control = new JobControl(store, this.pool);
    this.scheduler = new Scheduler({
      store,
      registries: this.registries,
      logger: options.logger,
      queued: () => void store.signals.publish({ type: 'queued' }).catch((error: unknown) => options.logger.warn({ err: error }, 'queued jobs not signalled; nodes find them at their next look')),
    });
    this.settings = new Settings(store, this.registries, this.scheduler, this.control);
    const reload = () => void this.scheduler.reload().catch((error: unknown) => options.logger.error({ err: error }, `schedules not reloaded: ${(error as Error).message}`));
    const tidy = setInterval(() => void this.#tidy(), TIDY_EVERY_MS);
    tidy.unref();
    const unsubscribe = [
      store.signals.subscribe((signal) => {
        if (signal.type === 'policies') reload();
        else if (signal.type === 'registries') signal.urls.forEach((url) => this.registries.forget(url));
        else if (signal.type === 'budget' && signal.node !== node) this.registries.refreshBudgets([signal.registry]);
      }),
      store.signals.onReconnect(reload),
      store.signals.onReconnect(() => this.registries.refreshBudgets()),
    ];
    this.#unsubscribe = () => {
      clearInterval(tidy);
      unsubscribe.forEach((stop) => stop());
    };
  }

  /** Old changes of the feed and blob upload claims that ran out: any node may drop them. */
  async #tidy(): Promise<void> {
    try {
      await this.store.jobs.forgetChanges(CHANGES_KEPT_MS);
      await this.store.blobUploads.forgetExpired();
    } catch (error) {
      this.logger.warn({ err: error }, `old job changes not dropped (${(error as Error).message}); tried again later`);
    }
  }

  /** Opens the store (migrating it), joins the nodes, starts claiming jobs and the schedules. */
  static async start(options: ServiceOptions): Promise<FerryService> {
    const inspector = await InspectorHub.create({ replication: replicationMachine, batch: batchMachine, deletion: deletionMachine });
    const store = await openStore(options.database, (message, error) => options.logger.warn({ err: error }, message), options.keyring);
    try {
      const node = newNodeId();
      await store.nodes.register({ id: node, host: hostname(), pid: process.pid });
      const feed = await ChangeFeed.start(store, options.logger);
      const service = new FerryService(store, feed, inspector, node, options);
      service.pool.start();
      await service.scheduler.reload();
      return service;
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  /** Connects with the stored settings, proving the endpoint and credentials work. */
  async ping(registry: Registry): Promise<void> {
    this.registries.forget(registry.url);
    await this.registries.get(registry.url, AbortSignal.timeout(30_000));
  }

  /**
   * Leaves the nodes: stops claiming, halts its jobs where they are and hands them back at
   * once (another node, or the next start, resumes them), then closes everything.
   */
  async close(): Promise<void> {
    this.#unsubscribe();
    this.scheduler.close();
    await this.store.nodes.drain(this.node).catch(() => {});
    await this.pool.drain();
    this.feed.close();
    await this.store.nodes.remove(this.node).catch(() => {});
    await this.#cleanups.settled(CLEANUP_WAIT_MS);
    await this.registries.close();
    await this.store.close();
  }
}

async function registryOptions(store: Store, url: string): Promise<RegistryOptions> {
  const registry = await store.registries.findByUrl(url);
  if (!registry) throw new RegistryError('INVALID_CONFIG', `no registry with URL ${url} is configured`);
  // Asked at each connect, so that the short-lived logins helpers hand out (ECR's last 12 hours) are fresh.
  const credentials = registry.credentialHelper === null ? await store.registries.credentials(registry.id) : await helperLogin(registry.credentialHelper, url);
  return {
    registry: url,
    insecure: registry.insecure,
    userAgent: 'ferry/0.1',
    ...(registry.requestsPerSecond === null ? {} : { requestsPerSecond: registry.requestsPerSecond }),
    ...(registry.ca ? { ca: registry.ca } : {}),
    ...(credentials ? { credentials } : {}),
  };
}

/** Registries' budgets in the store, which every node's limiters share; a pause or slow-down is announced to the others. */
function storeLedger(store: Store, node: NodeId, logger: Logger): BudgetLedger {
  return {
    update: (registry, change) =>
      store.registryBudgets.update(registry, change).catch((error: unknown) => {
        logger.warn({ err: error }, `the budget of ${registry} could not be read or shared (${(error as Error).message}); this node goes on with what it knows`);
        throw error;
      }),
    announce: (registry) =>
      void store.signals.publish({ type: 'budget', registry, node }).catch((error: unknown) => logger.warn({ err: error }, `the other nodes were not told of the budget of ${registry}; they read it at their next pull`)),
  };
}

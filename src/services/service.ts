import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { deletionMachine } from '../machines/deletion.js';
import { replicationMachine } from '../machines/replication.js';
import { BlobLocator } from './blob-locator.js';
import { InspectorHub } from './inspector/hub.js';
import { Registries } from './registry/registries.js';
import type { RegistryOptions } from './registry/client.js';
import { RegistryError } from './registry/errors.js';
import { Scheduler } from './scheduler.js';
import { openSqliteStore } from './store/sqlite.js';
import type { JobStore, Registry } from './store/types.js';
import { jobChange, WorkerPool, type JobChange } from './worker-pool.js';

export interface ServiceOptions {
  /** SQLite file; created with its directory when missing. */
  database: string;
  workers: number;
  logger: Logger;
  inspect?: (event: InspectionEvent) => void;
}

/**
 * ferry's job service: the store, the registries (credentials from the store), the worker
 * pool and the scheduler, and a feed of job changes for live views.
 */
export class FerryService {
  readonly store: JobStore;
  readonly registries: Registries;
  readonly pool: WorkerPool;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  /** Emits 'job' with a JobChange on every status or phase change. */
  readonly changes = new EventEmitter<{ job: [JobChange] }>();
  readonly inspector: InspectorHub;

  private constructor(store: JobStore, inspector: InspectorHub, options: ServiceOptions) {
    this.store = store;
    this.inspector = inspector;
    this.logger = options.logger;
    this.registries = new Registries((url) => registryOptions(store, url));
    this.changes.setMaxListeners(0);
    this.pool = new WorkerPool({
      store,
      environment: { registries: this.registries, locator: new BlobLocator(), logger: options.logger },
      workers: options.workers,
      onChange: (change) => this.changes.emit('job', change),
      observe: (job) => inspector.observe(job),
      ...(options.inspect ? { inspect: options.inspect } : {}),
    });
    this.scheduler = new Scheduler({
      store,
      registries: this.registries,
      logger: options.logger,
      queued: (jobs) => {
        for (const job of jobs) this.changes.emit('job', jobChange(job));
        this.pool.wake();
      },
    });
  }

  /** Opens the store (migrating it), resumes interrupted jobs and starts the schedules. */
  static async start(options: ServiceOptions): Promise<FerryService> {
    const inspector = await InspectorHub.create({ replication: replicationMachine, deletion: deletionMachine });
    const service = new FerryService(openSqliteStore(options.database), inspector, options);
    await service.pool.start();
    await service.scheduler.reload();
    return service;
  }

  /** Connects with the stored settings, proving the endpoint and credentials work. */
  async ping(registry: Registry): Promise<void> {
    this.registries.forget(registry.url);
    await this.registries.get(registry.url, AbortSignal.timeout(30_000));
  }

  /** Halts jobs where they are (a restart resumes them), then closes everything. */
  async close(): Promise<void> {
    this.scheduler.close();
    await this.pool.close();
    await this.registries.close();
    await this.store.close();
  }
}

async function registryOptions(store: JobStore, url: string): Promise<RegistryOptions> {
  const registry = (await store.listRegistries()).find((r) => r.url === url);
  if (!registry) throw new RegistryError('INVALID_CONFIG', `no registry with URL ${url} is configured`);
  const credentials = await store.registryCredentials(registry.id);
  return {
    registry: url,
    insecure: registry.insecure,
    userAgent: 'ferry/0.1',
    ...(registry.ca ? { ca: registry.ca } : {}),
    ...(credentials ? { credentials } : {}),
  };
}

import type { Keyring } from '../secrets.js';
import type { Signals, Store } from '../types.js';
import { blobUploadStore } from './blob-uploads.js';
import type { Database } from './database.js';
import { executionStore } from './executions.js';
import { jobStore } from './jobs.js';
import { nodeStore } from './nodes.js';
import { policyStore } from './policies.js';
import { registryBudgetStore } from './registry-budgets.js';
import { registryStore } from './registries.js';

/** The store over either engine: the queries are shared, the connection and signals are the engine's. */
export function sqlStore(database: Database, engine: { location: string; signals: Signals; close(): Promise<void> }, keyring: Keyring): Store {
  return {
    engine: database.dialect.engine,
    location: engine.location,
    registries: registryStore(database, keyring),
    policies: policyStore(database),
    executions: executionStore(database),
    jobs: jobStore(database),
    nodes: nodeStore(database),
    blobUploads: blobUploadStore(database),
    registryBudgets: registryBudgetStore(database),
    signals: engine.signals,
    close: engine.close,
  };
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { openStore } from '../../src/services/store/open.js';
import type { Store } from '../../src/services/store/types.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

/** Every engine the store runs on: suites that touch the store run on each. */
export const ENGINES = ['sqlite', 'postgres'] as const;
export type Engine = (typeof ENGINES)[number];

export interface Databases {
  /** A new, empty database: a SQLite file under the test's directory, or a PostgreSQL database. */
  fresh(label: string): Promise<string>;
  /** Drops the PostgreSQL databases made so far (SQLite files go with the directory). */
  dropAll(): Promise<void>;
}

export function databases(engine: Engine, dir: () => string): Databases {
  const made: TestDatabase[] = [];
  let count = 0;
  return {
    async fresh(label) {
      if (engine === 'sqlite') return join(dir(), `${label}-${++count}.db`);
      const database = await createTestDatabase(label);
      made.push(database);
      return database.url;
    },
    async dropAll() {
      await Promise.all(made.splice(0).map((database) => database.drop()));
    },
  };
}

/** One store on a fresh database of `engine` for the enclosing suite: opened before its tests, closed and dropped after. */
export function suiteStore(engine: Engine, label: string): () => Store {
  let dir: string;
  let store: Store | undefined;
  const made = databases(engine, () => dir);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `ferry-${label}-`));
    store = await openStore(await made.fresh(label), () => {});
  });
  afterAll(async () => {
    await store?.close();
    await made.dropAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return () => store!;
}

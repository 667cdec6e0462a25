import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { buildApi } from '../../src/services/api/app.js';
import { FerryService } from '../../src/services/service.js';
import { freePort } from './registry.js';

/** `ferry serve` as the console's browser tests use it: a service on its own SQLite file, its API on a free port, and Debian's Chromium. */
export interface ConsoleUnderTest {
  service: FerryService;
  api: FastifyInstance;
  /** `http://127.0.0.1:<port>` */
  base: string;
  browser: Browser;
  close(): Promise<void>;
}

export async function startConsole(name: string, workers: number): Promise<ConsoleUnderTest> {
  const dir = await mkdtemp(join(tmpdir(), `ferry-${name}-`));
  const service = await FerryService.start({ database: join(dir, 'ferry.db'), workers, logger: pino({ level: 'silent' }) });
  const api = await buildApi(service, {});
  const port = await freePort();
  await api.listen({ port, host: '127.0.0.1' });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return {
    service,
    api,
    base: `http://127.0.0.1:${port}`,
    browser,
    async close() {
      await browser.close();
      await api.close();
      await service.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

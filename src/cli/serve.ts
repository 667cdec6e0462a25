import { buildApi } from '../services/api/app.js';
import { applyConfig, readConfigFile } from '../services/config-file.js';
import { isLoopbackRegistry } from '../services/registry/reference.js';
import { STATELY_INSPECTOR_URL, statelyInspector } from '../services/inspector/stately.js';
import { DEFAULT_LEASE_MS, FerryService } from '../services/service.js';
import type { CommandIO } from './io.js';
import { commandLogger, type LogOptions } from './options.js';
import { loadKeyring } from '../services/store/secrets.js';
import { apiToken, keyFile } from './secrets.js';
import { positiveInteger, UsageError } from './usage.js';

export interface ServeOptions extends LogOptions {
  db?: string;
  lease?: string;
  host: string;
  port?: string;
  workers?: string;
  config?: string;
  token?: string;
  tokenFile?: string;
  secretKeyFile?: string;
  inspect?: boolean;
}

export async function serveCommand(values: ServeOptions, io: CommandIO): Promise<number> {
  const port = positiveInteger(values.port, '--port', 8080);
  const workers = positiveInteger(values.workers, '--workers', 4);
  const leaseMs = positiveInteger(values.lease, '--lease', DEFAULT_LEASE_MS / 1000) * 1000;
  const database = values.db ?? io.env.FERRY_DATABASE_URL ?? 'data/ferry.db';
  const token = await apiToken(values, io.env);
  if (!token && !isLoopbackRegistry(values.host)) {
    throw new UsageError(`refusing to listen on ${values.host} without an API token: set --token, --token-file or FERRY_API_TOKEN (or listen on 127.0.0.1)`);
  }

  const logger = commandLogger(values, io.stdout, 'info');
  const config = values.config ? await readConfigFile(values.config, io.env) : undefined;
  const stately = values.inspect ? statelyInspector(io.env.FERRY_INSPECT_URL ?? STATELY_INSPECTOR_URL) : undefined;
  const keyring = await loadKeyring({ env: io.env, file: keyFile(database, values.secretKeyFile) });
  const service = await FerryService.start({ database, keyring, workers, leaseMs, logger, ...(stately ? { inspect: stately.inspect } : {}) });
  try {
    if (config) {
      const applied = await applyConfig(service.store, service.settings, config);
      logger.info(`${values.config}: ${applied.registries.length} registries and ${applied.policies.length} policies applied`);
    }
    const app = await buildApi(service, token ? { token } : {});
    await app.listen({ host: values.host, port });
    logger.info(`ferry listening on http://${values.host.includes(':') ? `[${values.host}]` : values.host}:${port} (console at /, API at /api/v1; database ${service.store.location}, node ${service.node}, ${workers} workers)`);
    if (stately) logger.info(`sending inspection events to ${io.env.FERRY_INSPECT_URL ?? STATELY_INSPECTOR_URL}: run "npx ferry stately-inspector" to see them in Stately's inspector`);
    await io.interrupted;
    logger.info('draining: this node claims no more jobs; its running jobs halt where they are and are handed back to the other nodes (or the next start)');
    await app.close();
  } finally {
    stately?.stop();
    await service.close();
  }
  return 0;
}

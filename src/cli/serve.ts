import { parseArgs } from 'node:util';
import { buildApi } from '../services/api/app.js';
import { applyConfig, readConfigFile } from '../services/config-file.js';
import { createLogger, type LogFormat } from '../services/logger.js';
import { isLoopbackRegistry } from '../services/registry/reference.js';
import { STATELY_INSPECTOR_URL, statelyInspector } from '../services/inspector/stately.js';
import { DEFAULT_LEASE_MS, FerryService } from '../services/service.js';
import { loadKeyring } from '../services/store/secrets.js';
import type { CommandIO } from './io.js';
import { logFormat } from './options.js';
import { apiToken, keyFile } from './secrets.js';
import { positiveInteger, UsageError } from './usage.js';

export const SERVE_USAGE = `Usage: ferry serve [options]

Runs the job service: the web console at /, the REST API under /api/v1, the worker pool
and the triggers.

Options:
  --db PATH|URL        a SQLite file (default ./data/ferry.db; created with its directory), or
                       postgres://user:pass@host:5432/db to run several nodes on one PostgreSQL
                       (or FERRY_DATABASE_URL)
  --lease SECONDS      how long this node holds a job without renewing its lease (default 15):
                       a node that dies loses its jobs to the others after at most this long
  --host HOST          address to listen on (default 127.0.0.1)
  --port PORT          (default 8080)
  --workers N          jobs running at once (default 4)
  --config FILE        ferry.yaml: registries and policies to create or update at start-up
  --token TOKEN        API bearer token (or FERRY_API_TOKEN); required off loopback
  --token-file FILE    the token read from a file, out of sight of ps
  --secret-key-file FILE
                       the key that seals registry passwords, created (mode 0600) when
                       missing (default ferry.key next to the SQLite file, or data/ferry.key
                       for PostgreSQL); FERRY_SECRET_KEY (base64, 32 bytes) overrides it
  --log-format FORMAT  text (default) or json
  --inspect            also send every job actor's inspection stream to Stately's inspector
                       (run "ferry stately-inspector"; FERRY_INSPECT_URL overrides ws://127.0.0.1:8081)

Jobs left running by a crash resume from their last step: on another node once their lease
runs out, or when the service starts again. SIGTERM (or Ctrl-C) drains the node: it stops
claiming and hands its jobs back at once.`;

export async function serveCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      db: { type: 'string' },
      lease: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      workers: { type: 'string' },
      config: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      'secret-key-file': { type: 'string' },
      'log-format': { type: 'string' },
      inspect: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got "${positionals[0]}"`);
  const format: LogFormat = logFormat(values['log-format']);
  const port = positiveInteger(values.port, '--port', 8080);
  const workers = positiveInteger(values.workers, '--workers', 4);
  const leaseMs = positiveInteger(values.lease, '--lease', DEFAULT_LEASE_MS / 1000) * 1000;
  const database = values.db ?? io.env.FERRY_DATABASE_URL ?? 'data/ferry.db';
  const token = await apiToken(values, io.env);
  if (!token && !isLoopbackRegistry(values.host)) {
    throw new UsageError(`refusing to listen on ${values.host} without an API token: set --token, --token-file or FERRY_API_TOKEN (or listen on 127.0.0.1)`);
  }

  const logger = createLogger(format, io.stdout, 'info');
  const config = values.config ? await readConfigFile(values.config, io.env) : undefined;
  const stately = values.inspect ? statelyInspector(io.env.FERRY_INSPECT_URL ?? STATELY_INSPECTOR_URL) : undefined;
  const keyring = await loadKeyring({ env: io.env, file: keyFile(database, values['secret-key-file']) });
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

import { parseArgs } from 'node:util';
import { buildApi } from '../services/api/app.js';
import { applyConfig, readConfigFile } from '../services/config-file.js';
import { createLogger, type LogFormat } from '../services/logger.js';
import { isLoopbackRegistry } from '../services/registry/reference.js';
import { STATELY_INSPECTOR_URL, statelyInspector } from '../services/inspector/stately.js';
import { FerryService } from '../services/service.js';
import type { CommandIO } from './io.js';
import { logFormat } from './options.js';
import { positiveInteger, UsageError } from './usage.js';

export const SERVE_USAGE = `Usage: ferry serve [options]

Runs the job service: the web console at /, the REST API under /api/v1, the worker pool
and the triggers.

Options:
  --db PATH            SQLite file (default ./data/ferry.db; created with its directory)
  --host HOST          address to listen on (default 127.0.0.1)
  --port PORT          (default 8080)
  --workers N          jobs running at once (default 4)
  --config FILE        ferry.yaml: registries and policies to create or update at start-up
  --token TOKEN        API bearer token (or FERRY_API_TOKEN); required off loopback
  --log-format FORMAT  text (default) or json
  --inspect            also send every job actor's inspection stream to Stately's inspector
                       (run "ferry stately-inspector"; FERRY_INSPECT_URL overrides ws://127.0.0.1:8081)

Jobs left running by a crash resume from their last step when the service starts again.`;

export async function serveCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      db: { type: 'string', default: 'data/ferry.db' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      workers: { type: 'string' },
      config: { type: 'string' },
      token: { type: 'string' },
      'log-format': { type: 'string' },
      inspect: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got "${positionals[0]}"`);
  const format: LogFormat = logFormat(values['log-format']);
  const port = positiveInteger(values.port, '--port', 8080);
  const workers = positiveInteger(values.workers, '--workers', 4);
  const token = values.token ?? io.env.FERRY_API_TOKEN;
  if (!token && !isLoopbackRegistry(values.host)) {
    throw new UsageError(`refusing to listen on ${values.host} without an API token: set --token or FERRY_API_TOKEN (or listen on 127.0.0.1)`);
  }

  const logger = createLogger(format, io.stdout, 'info');
  const config = values.config ? await readConfigFile(values.config, io.env) : undefined;
  const stately = values.inspect ? statelyInspector(io.env.FERRY_INSPECT_URL ?? STATELY_INSPECTOR_URL) : undefined;
  const service = await FerryService.start({ database: values.db, workers, logger, ...(stately ? { inspect: stately.inspect } : {}) });
  try {
    if (config) {
      const applied = await applyConfig(service.store, config);
      await service.scheduler.reload();
      logger.info(`${values.config}: ${applied.registries.length} registries and ${applied.policies.length} policies applied`);
    }
    const app = await buildApi(service, token ? { token } : {});
    await app.listen({ host: values.host, port });
    logger.info(`ferry listening on http://${values.host.includes(':') ? `[${values.host}]` : values.host}:${port} (console at /, API at /api/v1; database ${values.db}, ${workers} workers)`);
    if (stately) logger.info(`sending inspection events to ${io.env.FERRY_INSPECT_URL ?? STATELY_INSPECTOR_URL}: run "npx ferry stately-inspector" to see them in Stately's inspector`);
    await io.interrupted;
    logger.info('stopping: running jobs halt where they are and resume at the next start');
    await app.close();
  } finally {
    stately?.stop();
    await service.close();
  }
  return 0;
}

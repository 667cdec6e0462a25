import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** The console's static files: `src/console` when run from source, `dist/console` once built. */
const CONSOLE_ROOT = fileURLToPath(new URL('../../console/', import.meta.url));

/** Serves the web console at `/`: plain files, nothing fetched from elsewhere (air-gapped hosts). */
export async function serveConsole(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, { root: CONSOLE_ROOT, prefix: '/', index: 'index.html', wildcard: false, schemaHide: true });
}

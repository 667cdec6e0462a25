import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import type { FerryService } from '../service.js';
import { bearerAuth } from './auth.js';
import { serveConsole } from './console.js';
import { errorHandler } from './errors.js';
import { eventRoutes } from './routes/events.js';
import { inspectorRoutes } from './routes/inspector.js';
import { executionRoutes } from './routes/executions.js';
import { jobRoutes } from './routes/jobs.js';
import { metricsRoutes } from './routes/metrics.js';
import { nodeRoutes } from './routes/nodes.js';
import { policyRoutes } from './routes/policies.js';
import { registryRoutes } from './routes/registries.js';
import { vocabularyRoutes } from './routes/vocabulary.js';
import { webhookRoutes } from './routes/webhooks.js';
import { sharedSchemas } from './schemas.js';

export interface ApiOptions {
  /** Required as `Authorization: Bearer <token>` on every `/api/v1` route when set. */
  token?: string;
}

const PREFIX = '/api/v1';

/**
 * ferry's REST API over a running service, ready to listen. Fastify's own logger is off (it
 * would see authorization headers); failures are logged through the service's logger.
 */
export async function buildApi(service: FerryService, options: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    // Unknown fields are refused, not dropped, and nullable fields are written as type unions.
    ajv: { customOptions: { removeAdditional: false, allowUnionTypes: true } },
  });
  for (const schema of sharedSchemas) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'ferry', version: '0.1.0', description: 'Container-image replication between registries, as jobs' },
      tags: [
        { name: 'registries', description: 'Registries to replicate from and to' },
        { name: 'policies', description: 'What to replicate, where, and when' },
        { name: 'executions', description: 'Runs of policies' },
        { name: 'jobs', description: 'One repository of an execution each' },
        { name: 'events', description: 'Live job changes' },
        { name: 'nodes', description: 'The ferry serve processes sharing the database' },
        { name: 'webhooks', description: 'Registry notifications' },
        { name: 'inspector', description: 'The job machines drawn, and each job live' },
        { name: 'meta', description: 'Health, the job vocabulary and this document' },
      ],
      ...(options.token
        ? { components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }, security: [{ bearer: [] }] }
        : {}),
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`) },
  });
  app.setErrorHandler(errorHandler(service.logger));
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['meta'],
        summary: 'Liveness, and how many jobs are running',
        security: [],
        response: {
          200: { type: 'object', required: ['status', 'running', 'node'], properties: { status: { const: 'ok' }, running: { type: 'integer' }, node: { type: 'string' } } },
        },
      },
    },
    () => ({ status: 'ok', running: service.pool.running, node: service.node }),
  );

  // Outside /api/v1 where Prometheus looks, but behind the token: the metrics name registries and show activity.
  await app.register(async (scraped) => {
    if (options.token) scraped.addHook('onRequest', bearerAuth(options.token));
    await scraped.register(metricsRoutes, { service });
  });
  await serveConsole(app);
  await app.register(
    async (api) => {
      if (options.token) api.addHook('onRequest', bearerAuth(options.token));
      // Fastify reads text/plain bodies as strings by default: here they are 415 like any body but JSON.
      api.removeContentTypeParser('text/plain');
      api.get('/openapi.json', { schema: { tags: ['meta'], summary: 'This API as an OpenAPI document' } }, () => app.swagger());
      for (const routes of [registryRoutes, policyRoutes, executionRoutes, jobRoutes, nodeRoutes, eventRoutes, webhookRoutes, inspectorRoutes]) {
        await api.register(routes, { service });
      }
      await api.register(vocabularyRoutes);
    },
    { prefix: PREFIX },
  );
  return app;
}

import type { FastifyPluginAsync } from 'fastify';
import type { FerryService } from '../../service.js';

/** The node's Prometheus metrics, in the text exposition format. */
export const metricsRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const { registry } = service.metrics;
  app.get(
    '/metrics',
    { schema: { tags: ['meta'], summary: 'Prometheus metrics: jobs, copies, registry requests, this process', produces: [registry.contentType] } },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { FerryService } from '../../service.js';
import type { Page } from '../../store/types.js';
import { errors, pageQuery, ref } from '../schemas.js';

/** `GET /nodes`: the ferry serve processes on this database that are alive. */
export const nodeRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  app.get<{ Querystring: Page }>(
    '/nodes',
    {
      schema: {
        tags: ['nodes'],
        summary: 'List the live nodes',
        description: 'Every node whose heartbeat is younger than two leases, with the jobs it holds; `self` is the node that answers.',
        querystring: pageQuery,
        response: {
          200: {
            type: 'object',
            required: ['self', 'items', 'total'],
            properties: { self: { type: 'string' }, items: { type: 'array', items: ref('Node') }, total: { type: 'integer' } },
          },
          ...errors(400),
        },
      },
    },
    async (request) => ({ self: service.node, ...(await service.store.nodes.list(2 * service.leaseMs, request.query)) }),
  );
};

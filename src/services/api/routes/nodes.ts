import type { FastifyPluginAsync } from 'fastify';
import type { FerryService } from '../../service.js';
import { ref } from '../schemas.js';

/** `GET /nodes`: the ferry serve processes on this database that are alive. */
export const nodeRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  app.get(
    '/nodes',
    {
      schema: {
        tags: ['nodes'],
        summary: 'List the live nodes',
        description: 'Every node whose heartbeat is younger than two leases, with the jobs it holds; `self` is the node that answers.',
        response: {
          200: { type: 'object', required: ['self', 'items'], properties: { self: { type: 'string' }, items: { type: 'array', items: ref('Node') } } },
        },
      },
    },
    async () => ({ self: service.node, items: await service.store.nodes.list(2 * service.leaseMs) }),
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { FerryService } from '../../service.js';
import type { RegistryEvent } from '../../scheduler.js';
import { errors, idParams, type IdParams } from '../schemas.js';

const DISTRIBUTION_EVENTS = 'application/vnd.docker.distribution.events.v1+json';

const registryEvent = {
  type: 'object',
  description: 'One notification of distribution; fields other than these are ignored',
  properties: {
    action: { type: 'string' },
    target: {
      type: 'object',
      properties: { mediaType: { type: 'string' }, repository: { type: 'string' }, tag: { type: 'string' }, digest: { type: 'string' } },
    },
  },
} as const;

/** Registry notifications (distribution's envelope): pushes and deletions start the registry's event-triggered policies. */
export const webhookRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  app.addContentTypeParser(DISTRIBUTION_EVENTS, { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

  app.post<{ Params: IdParams; Body: { events: RegistryEvent[] } }>(
    '/webhooks/registries/:id',
    {
      schema: {
        tags: ['webhooks'],
        summary: "A registry's notifications",
        description: `Point the registry's notification endpoint here. Accepts ${DISTRIBUTION_EVENTS} and application/json.`,
        consumes: [DISTRIBUTION_EVENTS, 'application/json'],
        params: idParams,
        body: { type: 'object', additionalProperties: false, required: ['events'], properties: { events: { type: 'array', items: registryEvent } } },
        response: {
          202: {
            type: 'object',
            required: ['executions'],
            properties: { executions: { type: 'array', items: { type: 'string' }, description: 'The executions started' } },
          },
          ...errors(400, 404, 502),
        },
      },
    },
    async (request, reply) => {
      const registry = await service.settings.registry(request.params.id);
      const executions = await service.scheduler.notify(registry.id, request.body.events);
      return reply.code(202).send({ executions: executions.map((execution) => execution.id) });
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { FerryService } from '../../service.js';
import type { JobChange } from '../../worker-pool.js';
import { eventStreams } from '../sse.js';

/** `GET /events`: every job change as a Server-Sent Event. */
export const eventRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const openStream = eventStreams(app);
  app.get(
    '/events',
    {
      exposeHeadRoute: false,
      schema: {
        tags: ['events'],
        summary: 'Job changes, live',
        description: 'Server-Sent Events: `event: job` with a JobChange as `data` on every change of a job\'s status or phase.',
        response: { 200: { description: 'An event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } } },
      },
    },
    (_request, reply) => {
      const stream = openStream(reply);
      const send = (change: JobChange) => stream.send('job', change);
      service.changes.on('job', send);
      stream.onClose(() => service.changes.off('job', send));
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { FerryService } from '../../service.js';
import type { JobChange } from '../../worker-pool.js';

const HEARTBEAT_MS = 15_000;

/** `GET /events`: every job change as a Server-Sent Event, with comment heartbeats to keep proxies from timing out. */
export const eventRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const closers = new Set<() => void>();
  // A stream never ends on its own: closing the server must end them, or it waits forever.
  app.addHook('preClose', async () => {
    for (const close of closers) close();
  });

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
      reply.hijack();
      const stream = reply.raw;
      stream.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      stream.write(': connected\n\n');
      const send = (change: JobChange) => stream.write(`event: job\ndata: ${JSON.stringify(change)}\n\n`);
      const heartbeat = setInterval(() => stream.write(': heartbeat\n\n'), HEARTBEAT_MS);
      const close = () => {
        clearInterval(heartbeat);
        service.changes.off('job', send);
        closers.delete(close);
        stream.end();
      };
      service.changes.on('job', send);
      closers.add(close);
      stream.once('close', close);
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { FeedChange } from '../../change-feed.js';
import type { FerryService } from '../../service.js';
import { eventStreams } from '../sse.js';

/** `GET /events`: every job change on every node as a Server-Sent Event. */
export const eventRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const openStream = eventStreams(app);
  app.get<{ Headers: { 'last-event-id'?: string } }>(
    '/events',
    {
      exposeHeadRoute: false,
      schema: {
        tags: ['events'],
        summary: 'Job changes, live',
        description:
          "Server-Sent Events: `event: job` with a JobChange as `data` on every change of a job's status or phase, on any node. " +
          'Stored changes carry an `id`: a client that reconnects with `Last-Event-ID` first gets what it missed. ' +
          'Live bytes of transferring jobs come without an id.',
        headers: { type: 'object', properties: { 'last-event-id': { type: 'string', pattern: '^[0-9]+$' } } },
        response: { 200: { description: 'An event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } } },
      },
    },
    async (request, reply) => {
      const resumeAfter = request.headers['last-event-id'];
      // Subscribe before reading what was missed; what arrives meanwhile waits, and nothing is sent twice.
      const waiting: FeedChange[] = [];
      let replaying = resumeAfter !== undefined;
      let sent = resumeAfter === undefined ? 0 : Number(resumeAfter);
      const stream = openStream(reply);
      const send = (change: FeedChange) => {
        if (change.seq !== undefined) {
          if (change.seq <= sent) return;
          sent = change.seq;
        }
        const { seq, ...data } = change;
        stream.send('job', data, seq);
      };
      const unsubscribe = service.feed.subscribe((change) => (replaying ? waiting.push(change) : send(change)));
      stream.onClose(unsubscribe);
      if (resumeAfter === undefined) return;
      for (let missed = await service.feed.since(sent); missed.length > 0; missed = await service.feed.since(sent)) missed.forEach(send);
      waiting.forEach(send);
      replaying = false;
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import { stateId } from '../../inspector/hub.js';
import type { FerryService } from '../../service.js';
import { eventStreams } from '../sse.js';

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1 } } } as const;

/**
 * What the console draws: a machine's statechart laid out from its definition, and one job's
 * life as it happens (its state, the transitions it takes, its blobs and log lines).
 */
export const inspectorRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const openStream = eventStreams(app);

  app.get<{ Params: { name: string } }>(
    '/machines/:name/graph',
    {
      schema: {
        tags: ['inspector'],
        summary: 'A job machine laid out for drawing',
        params: { type: 'object', required: ['name'], properties: { name: { type: 'string', enum: ['replication', 'batch', 'deletion'] } } },
      },
    },
    (request) => service.inspector.graph(request.params.name),
  );

  app.get<{ Params: { id: string } }>(
    '/jobs/:id/live',
    {
      exposeHeadRoute: false,
      schema: {
        tags: ['inspector'],
        summary: "A job's life, live",
        description:
          'Server-Sent Events: first `snapshot` ({job (with its history), stateId, blobs, batches}), then `transition` ({from, to, edgeIds, event, at}), ' +
          '`job` (a JobChange), `blob` ({digest, size, bytes, state, how}), `batches` ({states: how many of its batches are in each state of the batch machine}) and `log` (a log entry) as they happen.',
        params: idParams,
        response: { 200: { description: 'An event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } } },
      },
    },
    async (request, reply) => {
      const job = await service.control.job(request.params.id);
      const stream = openStream(reply);
      const machine = job.operation === 'copy' ? 'replication' : 'deletion';
      // Subscribe before reading the live state, so nothing falls between the two.
      const unsubscribe = service.inspector.subscribe(job.id, (event) => stream.send(event.type, event));
      const unfollow = service.feed.subscribe((change) => change.jobId === job.id && stream.send('job', change));
      stream.onClose(() => {
        unsubscribe();
        unfollow();
      });
      const live = service.inspector.live(job.id);
      const history = await service.store.jobs.history(job.id);
      stream.send('snapshot', { job: { ...job, history }, stateId: live?.stateId ?? stateId(machine, job.status, job.phase), blobs: live?.blobs ?? [], batches: live?.batches ?? {} });
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { FerryService } from '../../service.js';
import type { Id, JobStatus, NodeId } from '../../store/types.js';
import { errors, idParams, jobStatus, list, page, ref, type IdParams } from '../schemas.js';

interface JobsQuery {
  executionId?: Id;
  status?: JobStatus;
  node?: NodeId;
  limit?: number;
  offset?: number;
}

interface LogsQuery {
  after?: number;
  limit?: number;
}

const tags = ['jobs'];

export const jobRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const { store, control, feed } = service;

  app.get<{ Querystring: JobsQuery }>(
    '/jobs',
    {
      schema: {
        tags,
        summary: 'List jobs',
        querystring: { type: 'object', additionalProperties: false, properties: { executionId: { type: 'string' }, status: jobStatus, node: { type: 'string', description: 'The jobs a node holds, or held last' }, ...page } },
        response: { 200: list('Job'), ...errors(400) },
      },
    },
    async (request) => {
      const { items, total } = await store.jobs.list(request.query);
      return { items: items.map((job) => feed.live(job)), total };
    },
  );

  app.get<{ Params: IdParams }>(
    '/jobs/:id',
    {
      schema: {
        tags,
        summary: 'Show a job and its history',
        params: idParams,
        response: {
          200: { allOf: [ref('Job'), { type: 'object', required: ['history'], properties: { history: { type: 'array', items: ref('Transition') } } }] },
          ...errors(404),
        },
      },
    },
    async (request) => {
      const job = await control.job(request.params.id);
      return { ...feed.live(job), history: await store.jobs.history(job.id) };
    },
  );

  app.post<{ Params: IdParams }>(
    '/jobs/:id/stop',
    {
      schema: {
        tags,
        summary: 'Stop a job',
        description: 'A pending job ends at once; a running one aborts its transfers, on whichever node runs it. 409 once it has ended.',
        params: idParams,
        response: { 200: ref('Job'), ...errors(404, 409) },
      },
    },
    (request) => control.stopJob(request.params.id),
  );

  app.post<{ Params: IdParams }>(
    '/jobs/:id/retry',
    {
      schema: {
        tags,
        summary: 'Retry a failed or stopped job',
        description: 'Runs it again from the start; what already reached the destination is skipped.',
        params: idParams,
        response: { 200: ref('Job'), ...errors(404, 409) },
      },
    },
    (request) => control.retryJob(request.params.id),
  );

  app.get<{ Params: IdParams; Querystring: LogsQuery }>(
    '/jobs/:id/logs',
    {
      schema: {
        tags,
        summary: "A job's log",
        description: 'Entries after the sequence number `after`, oldest first.',
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { after: { type: 'integer', minimum: 0 }, limit: page.limit },
        },
        response: { 200: { type: 'array', items: ref('JobLogEntry') }, ...errors(400, 404) },
      },
    },
    async (request) => {
      const job = await control.job(request.params.id);
      return store.jobs.logs(job.id, request.query);
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import { ACTIVE_STATUSES, RETRYABLE_STATUSES } from '../../../machines/status.js';
import type { FerryService } from '../../service.js';
import type { Id, Job, JobStatus, JobStore } from '../../store/types.js';
import { conflict, notFound } from '../errors.js';
import { errors, idParams, jobStatus, list, page, ref, type IdParams } from '../schemas.js';

const PAGE_SIZE = 1000;

/** Every job of an execution, however many pages that takes. */
export async function executionJobs(store: JobStore, executionId: Id): Promise<Job[]> {
  const jobs: Job[] = [];
  for (;;) {
    const { items, total } = await store.listJobs({ executionId, limit: PAGE_SIZE, offset: jobs.length });
    jobs.push(...items);
    if (items.length === 0 || jobs.length >= total) return jobs;
  }
}

interface JobsQuery {
  executionId?: Id;
  status?: JobStatus;
  limit?: number;
  offset?: number;
}

interface LogsQuery {
  after?: number;
  limit?: number;
}

const tags = ['jobs'];

export const jobRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const { store, pool } = service;

  const found = async (id: string): Promise<Job> => {
    const job = await store.getJob(id);
    if (!job) throw notFound('job', id);
    return job;
  };

  app.get<{ Querystring: JobsQuery }>(
    '/jobs',
    {
      schema: {
        tags,
        summary: 'List jobs',
        querystring: { type: 'object', additionalProperties: false, properties: { executionId: { type: 'string' }, status: jobStatus, ...page } },
        response: { 200: list('Job'), ...errors(400) },
      },
    },
    (request) => store.listJobs(request.query),
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
      const job = await found(request.params.id);
      return { ...job, history: await store.history(job.id) };
    },
  );

  app.post<{ Params: IdParams }>(
    '/jobs/:id/stop',
    {
      schema: {
        tags,
        summary: 'Stop a job',
        description: 'A pending job ends at once; a running one aborts its transfers. 409 once it has ended.',
        params: idParams,
        response: { 200: ref('Job'), ...errors(404, 409) },
      },
    },
    async (request) => {
      const job = await found(request.params.id);
      if (!ACTIVE_STATUSES.has(job.status) || !(await pool.stop(job.id))) throw conflict(`job ${job.id} has already ended`);
      return found(job.id);
    },
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
    async (request) => {
      const job = await found(request.params.id);
      if (!RETRYABLE_STATUSES.has(job.status) || !(await pool.retry(job.id))) throw conflict(`job ${job.id} is ${job.status}: only a failed or stopped job can be retried`);
      return found(job.id);
    },
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
      const job = await found(request.params.id);
      return store.logs(job.id, request.query);
    },
  );
};

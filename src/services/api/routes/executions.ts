import type { FastifyPluginAsync } from 'fastify';
import { ACTIVE_STATUSES } from '../../../machines/status.js';
import type { FerryService } from '../../service.js';
import type { Execution, ExecutionStatus, Id } from '../../store/types.js';
import { conflict, notFound } from '../errors.js';
import { errors, executionStatus, idParams, list, page, ref, type IdParams } from '../schemas.js';
import { executionJobs } from './jobs.js';

interface ExecutionsQuery {
  policyId?: Id;
  status?: ExecutionStatus;
  limit?: number;
  offset?: number;
}

const tags = ['executions'];

export const executionRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const { store, pool } = service;

  const found = async (id: string): Promise<Execution> => {
    const execution = await store.getExecution(id);
    if (!execution) throw notFound('execution', id);
    return execution;
  };

  app.get<{ Querystring: ExecutionsQuery }>(
    '/executions',
    {
      schema: {
        tags,
        summary: 'List executions, newest first',
        querystring: { type: 'object', additionalProperties: false, properties: { policyId: { type: 'string' }, status: executionStatus, ...page } },
        response: { 200: list('Execution'), ...errors(400) },
      },
    },
    (request) => store.listExecutions(request.query),
  );

  app.get<{ Params: IdParams }>(
    '/executions/:id',
    { schema: { tags, summary: 'Show an execution', params: idParams, response: { 200: ref('Execution'), ...errors(404) } } },
    (request) => found(request.params.id),
  );

  app.post<{ Params: IdParams }>(
    '/executions/:id/stop',
    {
      schema: {
        tags,
        summary: 'Stop every job of an execution',
        description: '409 once the execution has ended.',
        params: idParams,
        response: { 200: ref('Execution'), ...errors(404, 409) },
      },
    },
    async (request) => {
      const execution = await found(request.params.id);
      if (execution.finishedAt !== null) throw conflict(`execution ${execution.id} has already ended (${execution.status})`);
      const jobs = await executionJobs(store, execution.id);
      await Promise.all(jobs.filter((job) => ACTIVE_STATUSES.has(job.status)).map((job) => pool.stop(job.id)));
      return found(execution.id);
    },
  );

  app.post<{ Params: IdParams }>(
    '/executions/:id/retry',
    {
      schema: {
        tags,
        summary: 'Retry the failed jobs of an execution',
        description: '409 when none failed.',
        params: idParams,
        response: { 200: ref('Execution'), ...errors(404, 409) },
      },
    },
    async (request) => {
      const execution = await found(request.params.id);
      const failed = (await executionJobs(store, execution.id)).filter((job) => job.status === 'error');
      if (failed.length === 0) throw conflict(`execution ${execution.id} has no failed jobs`);
      await Promise.all(failed.map((job) => pool.retry(job.id)));
      return found(execution.id);
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import type { FerryService } from '../../service.js';
import type { ExecutionStatus, Id } from '../../store/types.js';
import { errors, executionStatus, idParams, list, page, ref, type IdParams } from '../schemas.js';

interface ExecutionsQuery {
  policyId?: Id;
  status?: ExecutionStatus;
  limit?: number;
  offset?: number;
}

const tags = ['executions'];

export const executionRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const { store, control } = service;

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
    (request) => store.executions.list(request.query),
  );

  app.get<{ Params: IdParams }>(
    '/executions/:id',
    { schema: { tags, summary: 'Show an execution', params: idParams, response: { 200: ref('Execution'), ...errors(404) } } },
    (request) => control.execution(request.params.id),
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
    (request) => control.stopExecution(request.params.id),
  );

  app.post<{ Params: IdParams }>(
    '/executions/:id/retry',
    {
      schema: {
        tags,
        summary: 'Retry the failed and stopped jobs of an execution',
        description: '409 when none failed or was stopped.',
        params: idParams,
        response: { 200: ref('Execution'), ...errors(404, 409) },
      },
    },
    (request) => control.retryExecution(request.params.id),
  );
};

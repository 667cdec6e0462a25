import { Cron } from 'croner';
import type { FastifyPluginAsync } from 'fastify';
import type { FerryService } from '../../service.js';
import type { JobStore, Policy, PolicyInput, Trigger } from '../../store/types.js';
import { compileFilter } from '../../tag-filter.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { errors, idParams, ref, type IdParams } from '../schemas.js';

/** A trigger as written: `schedule` belongs to cron triggers only, which the handler checks. */
interface TriggerBody {
  type: Trigger['type'];
  schedule?: string;
}

type PolicyBody = Omit<PolicyInput, 'trigger'> & { trigger?: TriggerBody };

const patterns = { type: 'array', items: { type: 'string' }, default: [] } as const;
const filterFields = { include: patterns, exclude: patterns } as const;

const policyFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  enabled: { type: 'boolean' },
  sourceRegistryId: { type: 'string', minLength: 1 },
  destinationRegistryId: { type: 'string', minLength: 1 },
  repositories: {
    type: 'object',
    additionalProperties: false,
    properties: filterFields,
    description: 'Globs over repository paths (** crosses /); empty include takes every repository',
  },
  tags: {
    type: 'object',
    additionalProperties: false,
    properties: { ...filterFields, syntax: { enum: ['glob', 'regex'], default: 'glob' } },
    description: 'Globs or regular expressions matched against whole tags',
  },
  rewrite: {
    type: 'object',
    additionalProperties: false,
    required: ['flatten'],
    properties: {
      namespace: { type: ['string', 'null'], minLength: 1, default: null },
      flatten: { type: 'integer', minimum: -1, description: 'Leading path components dropped; -1 keeps only the last' },
    },
  },
  override: { type: 'boolean', description: 'Replace a destination tag that points at another digest' },
  platforms: {
    type: 'array',
    uniqueItems: true,
    items: { type: 'string', pattern: '^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$', description: 'os/arch[/variant]' },
    description: 'Empty copies every platform',
  },
  replicateDeletions: { type: 'boolean' },
  bandwidthKiBps: { type: ['number', 'null'], exclusiveMinimum: 0, description: 'Per job; null for no limit' },
  trigger: {
    type: 'object',
    additionalProperties: false,
    required: ['type'],
    properties: { type: { enum: ['manual', 'cron', 'event'] }, schedule: { type: 'string', description: 'Cron expression, for cron triggers' } },
  },
  priority: { type: 'integer', description: 'Higher runs first' },
} as const;

const tags = ['policies'];

function checkedTrigger(trigger: TriggerBody): Trigger {
  const field = 'body.trigger.schedule';
  if (trigger.type !== 'cron') {
    if (trigger.schedule !== undefined) throw badRequest(field, `body.trigger.schedule is only for cron triggers, not ${trigger.type}`);
    return { type: trigger.type };
  }
  if (trigger.schedule === undefined) throw badRequest(field, 'body.trigger.schedule is required for a cron trigger');
  try {
    new Cron(trigger.schedule, { paused: true }).stop();
  } catch (error) {
    throw badRequest(field, `body.trigger.schedule ${JSON.stringify(trigger.schedule)} is not a cron schedule: ${(error as Error).message}`);
  }
  return { type: 'cron', schedule: trigger.schedule };
}

function checkFilter(field: string, filter: Parameters<typeof compileFilter>[0] | undefined): void {
  if (!filter) return;
  try {
    compileFilter(filter);
  } catch (error) {
    throw badRequest(field, `${field}: ${(error as Error).message}`);
  }
}

/** What the schema cannot say: the registries exist, the schedule and filters parse. */
async function checkedPolicy<T extends Partial<PolicyBody>>(store: JobStore, body: T): Promise<Omit<T, 'trigger'> & { trigger?: Trigger }> {
  for (const field of ['sourceRegistryId', 'destinationRegistryId'] as const) {
    const id = body[field];
    if (id !== undefined && !(await store.getRegistry(id))) throw badRequest(`body.${field}`, `body.${field}: no registry ${id}`);
  }
  checkFilter('body.repositories', body.repositories);
  checkFilter('body.tags', body.tags);
  const { trigger, ...rest } = body;
  return trigger ? { ...rest, trigger: checkedTrigger(trigger) } : rest;
}

export const policyRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const { store, scheduler } = service;

  const found = async (id: string): Promise<Policy> => {
    const policy = await store.getPolicy(id);
    if (!policy) throw notFound('policy', id);
    return policy;
  };

  app.get('/policies', { schema: { tags, summary: 'List replication policies', response: { 200: { type: 'array', items: ref('Policy') } } } }, () =>
    store.listPolicies(),
  );

  app.post<{ Body: PolicyBody }>(
    '/policies',
    {
      schema: {
        tags,
        summary: 'Add a replication policy',
        body: { type: 'object', additionalProperties: false, required: ['name', 'sourceRegistryId', 'destinationRegistryId'], properties: policyFields },
        response: { 201: ref('Policy'), ...errors(400, 409) },
      },
    },
    async (request, reply) => {
      const policy = await store.createPolicy(await checkedPolicy(store, request.body));
      await scheduler.reload();
      return reply.code(201).send(policy);
    },
  );

  app.get<{ Params: IdParams }>(
    '/policies/:id',
    { schema: { tags, summary: 'Show a replication policy', params: idParams, response: { 200: ref('Policy'), ...errors(404) } } },
    (request) => found(request.params.id),
  );

  app.patch<{ Params: IdParams; Body: Partial<PolicyBody> }>(
    '/policies/:id',
    {
      schema: {
        tags,
        summary: 'Change a replication policy',
        description: 'Fields left out keep their value; objects given replace the stored ones whole.',
        params: idParams,
        body: { type: 'object', additionalProperties: false, properties: policyFields },
        response: { 200: ref('Policy'), ...errors(400, 404, 409) },
      },
    },
    async (request) => {
      const { id } = request.params;
      await found(id);
      const policy = await store.updatePolicy(id, await checkedPolicy(store, request.body));
      if (!policy) throw notFound('policy', id);
      await scheduler.reload();
      return policy;
    },
  );

  app.delete<{ Params: IdParams }>(
    '/policies/:id',
    {
      schema: {
        tags,
        summary: 'Remove a replication policy',
        description: 'Its executions stay, without a policy.',
        params: idParams,
        response: { 204: { type: 'null', description: 'Removed' }, ...errors(404) },
      },
    },
    async (request, reply) => {
      if (!(await store.deletePolicy(request.params.id))) throw notFound('policy', request.params.id);
      await scheduler.reload();
      return reply.code(204).send();
    },
  );

  app.post<{ Params: IdParams }>(
    '/policies/:id/trigger',
    {
      schema: {
        tags,
        summary: 'Run a replication policy now',
        description: 'Resolves the policy into one job per repository, queued as one execution.',
        params: idParams,
        response: {
          201: {
            type: 'object',
            required: ['execution', 'jobs'],
            properties: { execution: ref('Execution'), jobs: { type: 'array', items: ref('Job') } },
          },
          ...errors(404, 409, 502),
        },
      },
    },
    async (request, reply) => {
      const policy = await found(request.params.id);
      if (!policy.enabled) throw conflict(`policy ${policy.name} is disabled`);
      return reply.code(201).send(await scheduler.trigger(policy, 'manual'));
    },
  );
};

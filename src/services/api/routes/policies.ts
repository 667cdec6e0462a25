import type { FastifyPluginAsync } from 'fastify';
import type { PolicyDraft } from '../../domain/policy.js';
import { PREVIEW_BOUNDS } from '../../policy/preview.js';
import type { FerryService } from '../../service.js';
import type { Page, SignatureRequirement } from '../../store/types.js';
import { DEFAULT_PAGE_SIZE, errors, idParams, list, pageQuery, ref, referrerSelectionInput, tagSelectionFields, type IdParams } from '../schemas.js';

// The schemas give the shape (and the OpenAPI document); the domain module has the rules.
const patterns = { type: 'array', items: { type: 'string' }, default: [] } as const;
const filterFields = { include: patterns, exclude: patterns } as const;

const policyFields = {
  name: { type: 'string' },
  enabled: { type: 'boolean' },
  sourceRegistryId: { type: 'string' },
  destinationRegistryId: { type: 'string' },
  repositories: {
    type: 'object',
    additionalProperties: false,
    properties: filterFields,
    description: 'Globs over repository paths (** crosses /); empty include takes every repository',
  },
  tags: {
    type: 'object',
    additionalProperties: false,
    properties: { ...filterFields, syntax: { enum: ['glob', 'regex'], default: 'glob' }, ...tagSelectionFields },
    description: 'Globs or regular expressions matched against whole tags, and optionally a semver range and the latest N',
  },
  rewrite: {
    type: 'object',
    additionalProperties: false,
    required: ['flatten'],
    properties: {
      namespace: { type: ['string', 'null'], default: null, description: 'A repository path the rewritten paths go under' },
      flatten: { type: 'integer', description: 'Leading path components dropped; -1 keeps only the last' },
    },
  },
  override: { type: 'boolean', description: 'Replace a destination tag that points at another digest' },
  platforms: {
    type: 'array',
    items: { type: 'string', description: 'os/arch[/variant]' },
    description: 'Each once; empty copies every platform',
  },
  replicateDeletions: { type: 'boolean' },
  bandwidthKiBps: { type: ['number', 'null'], description: 'Above 0, per job; null for no limit' },
  trigger: {
    type: 'object',
    additionalProperties: false,
    required: ['type'],
    properties: { type: { enum: ['manual', 'cron', 'event'] }, schedule: { type: 'string', description: 'Cron expression, for cron triggers' } },
  },
  priority: { type: 'integer', description: 'Higher runs first' },
  referrers: referrerSelectionInput,
  requireSignature: {
    type: ['object', 'null'],
    additionalProperties: false,
    required: ['key'],
    properties: {
      key: { type: 'string', description: 'An ECDSA P-256 public key in PEM, as cosign.pub' },
      source: { type: 'string', minLength: 1, description: 'Where the key came from, for messages (by default the policy)' },
    },
    description: 'Copy only the images with a cosign signature that verifies with this key; null copies them all',
  },
} as const;

const count = { type: 'integer' } as const;
const previewSchema = {
  type: 'object',
  required: ['repositoriesSelected', 'repositories', 'bytes', 'bounds'],
  properties: {
    repositoriesSelected: { ...count, description: 'Repositories of the catalog the filters select; the first few are previewed' },
    repositories: {
      type: 'array',
      items: {
        type: 'object',
        required: ['source', 'destination', 'selected', 'leftOut', 'toCopy', 'unchanged', 'bytes'],
        properties: {
          source: { type: 'string' },
          destination: { type: 'string' },
          listed: count,
          selected: { type: 'array', items: { type: 'string' } },
          leftOut: { type: 'object', additionalProperties: count, description: 'Tags left out, by the first filter that refused them' },
          toCopy: { type: 'array', items: { type: 'object', required: ['tag', 'bytes'], properties: { tag: { type: 'string' }, bytes: count } } },
          unchanged: { type: 'array', items: { type: 'string' } },
          bytes: { ...count, description: 'Of the blobs the destination lacks' },
          error: { type: 'string', description: 'Why the dry run of this repository ended early' },
        },
      },
    },
    bytes: count,
    bounds: { type: 'object', required: ['repositories', 'timeoutMs'], properties: { repositories: count, timeoutMs: count } },
  },
} as const;

/** The API takes a key without saying where it came from. */
type SignatureBody = Omit<SignatureRequirement, 'source'> & { source?: string };
type PolicyBody = Omit<PolicyDraft, 'requireSignature'> & { requireSignature?: SignatureBody | null };

/** A key given without its source is named after its policy in messages. */
async function withKeySource<T extends Partial<PolicyBody>>(body: T, policyName: () => Promise<string>): Promise<Omit<T, 'requireSignature'> & Pick<PolicyDraft, 'requireSignature'>> {
  const { requireSignature, ...rest } = body;
  if (!requireSignature) return { ...rest, requireSignature };
  return { ...rest, requireSignature: { key: requireSignature.key, source: requireSignature.source ?? `the key of policy ${await policyName()}` } };
}

const tags = ['policies'];

export const policyRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const { store, settings } = service;

  app.get<{ Querystring: Page }>(
    '/policies',
    { schema: { tags, summary: 'List replication policies by name', querystring: pageQuery, response: { 200: list('Policy'), ...errors(400) } } },
    (request) => store.policies.list(request.query),
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
      const policy = await settings.addPolicy(await withKeySource(request.body, async () => request.body.name));
      return reply.code(201).header('location', `${app.prefix}/policies/${policy.id}`).send(policy);
    },
  );

  app.post<{ Body: PolicyBody }>(
    '/policies/preview',
    {
      schema: {
        tags,
        summary: 'Preview a replication policy',
        description: `A dry run of a policy, stored or not: the repositories and tags its filters select and the bytes missing at the destination. Bounded: the first ${PREVIEW_BOUNDS.repositories} repositories, ${PREVIEW_BOUNDS.timeoutMs / 1000} s.`,
        body: { type: 'object', additionalProperties: false, required: ['sourceRegistryId', 'destinationRegistryId'], properties: policyFields },
        response: { 200: previewSchema, ...errors(400, 409, 502) },
      },
    },
    async (request, reply) => {
      // A draft may have no name yet; a person who edits on, or leaves, ends the dry run.
      const name = request.body.name || 'preview';
      const gone = new AbortController();
      reply.raw.on('close', () => gone.abort());
      return settings.previewPolicy(await withKeySource({ ...request.body, name }, async () => name), service.logger, gone.signal);
    },
  );

  app.get<{ Params: IdParams }>(
    '/policies/:id',
    { schema: { tags, summary: 'Show a replication policy', params: idParams, response: { 200: ref('Policy'), ...errors(404) } } },
    (request) => settings.policy(request.params.id),
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
      return settings.updatePolicy(id, await withKeySource(request.body, async () => request.body.name ?? (await settings.policy(id)).name));
    },
  );

  app.delete<{ Params: IdParams; Querystring: { stop?: boolean } }>(
    '/policies/:id',
    {
      schema: {
        tags,
        summary: 'Remove a replication policy',
        description: 'Its executions stay, without a policy. 409 while any is under way, unless `stop=true` stops them first.',
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: { stop: { type: 'boolean', default: false } } },
        response: { 204: { type: 'null', description: 'Removed' }, ...errors(400, 404, 409) },
      },
    },
    async (request, reply) => {
      await settings.deletePolicy(request.params.id, request.query);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: IdParams }>(
    '/policies/:id/trigger',
    {
      schema: {
        tags,
        summary: 'Run a replication policy now',
        description: `Resolves the policy into one job per repository, queued as one execution. Gives its first ${DEFAULT_PAGE_SIZE} jobs: the others are listed by GET /jobs?executionId=….`,
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
      const { execution, jobs } = await settings.trigger(request.params.id);
      return reply.code(201).header('location', `${app.prefix}/executions/${execution.id}`).send({ execution, jobs: jobs.slice(0, DEFAULT_PAGE_SIZE) });
    },
  );
};

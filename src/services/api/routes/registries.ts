import type { FastifyPluginAsync } from 'fastify';
import type { FerryService } from '../../service.js';
import type { Page, RegistryInput } from '../../store/types.js';
import { errors, idParams, list, pageQuery, ref, type IdParams } from '../schemas.js';

// The schemas give the shape (and the OpenAPI document); the domain module has the rules.
const registryFields = {
  name: { type: 'string' },
  url: { type: 'string', description: 'As in image references: ghcr.io, registry.example.com:5000' },
  insecure: { type: 'boolean', description: 'Skip TLS verification and allow plain HTTP' },
  ca: { type: ['string', 'null'], description: 'PEM certificates trusted besides the system CAs' },
  credentials: {
    type: ['object', 'null'],
    additionalProperties: false,
    required: ['username', 'password'],
    properties: {
      username: { type: 'string', description: 'Without ":"' },
      password: { type: 'string', writeOnly: true },
    },
    description: 'Write-only; null removes them. Giving them removes the credential helper',
  },
  credentialHelper: {
    type: ['string', 'null'],
    description: 'A docker credential helper asked for the login at each connect: ecr-login runs docker-credential-ecr-login get. Giving it removes the credentials; null removes it',
  },
  requestsPerSecond: { type: ['number', 'null'], description: 'The most requests per second each node sends; null: no ceiling (429s still slow ferry down)' },
} as const;

const tags = ['registries'];

export const registryRoutes: FastifyPluginAsync<{ service: FerryService }> = async (app, { service }) => {
  const { store, settings } = service;

  app.get<{ Querystring: Page }>(
    '/registries',
    { schema: { tags, summary: 'List registries by name', querystring: pageQuery, response: { 200: list('Registry'), ...errors(400) } } },
    (request) => store.registries.list(request.query),
  );

  app.post<{ Body: RegistryInput }>(
    '/registries',
    {
      schema: {
        tags,
        summary: 'Add a registry',
        body: { type: 'object', additionalProperties: false, required: ['name', 'url'], properties: registryFields },
        response: { 201: ref('Registry'), ...errors(400, 409) },
      },
    },
    async (request, reply) => {
      const registry = await settings.addRegistry(request.body);
      return reply.code(201).header('location', `${app.prefix}/registries/${registry.id}`).send(registry);
    },
  );

  app.get<{ Params: IdParams }>(
    '/registries/:id',
    { schema: { tags, summary: 'Show a registry', params: idParams, response: { 200: ref('Registry'), ...errors(404) } } },
    (request) => settings.registry(request.params.id),
  );

  app.patch<{ Params: IdParams; Body: Partial<RegistryInput> }>(
    '/registries/:id',
    {
      schema: {
        tags,
        summary: 'Change a registry',
        description: 'Fields left out keep their value. A change of URL, login, TLS settings or rate reconnects.',
        params: idParams,
        body: { type: 'object', additionalProperties: false, properties: registryFields },
        response: { 200: ref('Registry'), ...errors(400, 404, 409) },
      },
    },
    (request) => settings.updateRegistry(request.params.id, request.body),
  );

  app.get<{ Params: IdParams }>(
    '/registries/:id/budget',
    {
      schema: {
        tags,
        summary: "A registry's request budget",
        description: 'What this node and the others learnt of it: the pause after a 429, the rate allowed, the pulls left; and the requests waiting on this node.',
        params: idParams,
        response: { 200: ref('RegistryBudget'), ...errors(404) },
      },
    },
    async (request) => {
      const registry = await settings.registry(request.params.id);
      const limiter = service.registries.limiter(registry.url)!;
      // As stored, also on a node that has not connected to it since it changed.
      limiter.configure(registry.requestsPerSecond);
      return limiter.status();
    },
  );

  app.delete<{ Params: IdParams }>(
    '/registries/:id',
    {
      schema: {
        tags,
        summary: 'Remove a registry',
        description: 'Refused while a policy uses it.',
        params: idParams,
        response: { 204: { type: 'null', description: 'Removed' }, ...errors(404, 409) },
      },
    },
    async (request, reply) => {
      await settings.deleteRegistry(request.params.id);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: IdParams }>(
    '/registries/:id/ping',
    {
      schema: {
        tags,
        summary: 'Connect to a registry',
        description: 'Proves the endpoint and credentials work; 502 with the reason when they do not.',
        params: idParams,
        response: { 200: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' } } }, ...errors(404, 502) },
      },
    },
    async (request) => {
      await service.ping(await settings.registry(request.params.id));
      return { ok: true };
    },
  );
};

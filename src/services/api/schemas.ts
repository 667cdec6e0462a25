import { EXECUTION_STATUSES, JOB_STATUSES } from '../../machines/status.js';

/**
 * JSON schemas: the shared ones (responses, registered with `$id` and named in the OpenAPI
 * document's components) and the pieces request schemas are built from.
 */

const TRIGGERS = ['manual', 'cron', 'event'];

const timestamp = { type: 'string', format: 'date-time' } as const;
const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' } as const;
const nullableString = { type: ['string', 'null'] } as const;

function object(properties: Record<string, object>, description?: string) {
  return { type: 'object', required: Object.keys(properties), properties, ...(description ? { description } : {}) } as const;
}

const filter = object({ include: { type: 'array', items: { type: 'string' } }, exclude: { type: 'array', items: { type: 'string' } } });

const execution = object(
  {
    id: { type: 'string' },
    policyId: nullableString,
    trigger: { enum: TRIGGERS },
    status: { enum: EXECUTION_STATUSES },
    jobs: object(Object.fromEntries(JOB_STATUSES.map((status) => [status, { type: 'integer' }])), 'Jobs per status'),
    createdAt: timestamp,
    finishedAt: nullableTimestamp,
  },
  'One run of a policy',
);

/** A tag filter's semver range and "latest N", as requests give them and answers show them. */
export const tagSelectionFields = {
  semver: {
    type: 'object',
    additionalProperties: false,
    required: ['range'],
    properties: { range: { type: 'string' }, includePrerelease: { type: 'boolean', default: false } },
    description: 'Only tags that are versions (1.2.3, v1.2.3, 2.0.0-rc.1) in this npm-style range, as ">=1.2 <2" or "^3"; prereleases only with includePrerelease',
  },
  latest: {
    type: 'object',
    additionalProperties: false,
    required: ['count'],
    properties: { count: { type: 'integer' }, by: { enum: ['semver', 'created'], default: 'semver' } },
    description: 'Of the tags that pass the rest, only the count newest: highest versions, or newest image configs (created)',
  },
} as const;

const REFERRERS = 'Which referrers (signatures, SBOMs, attestations) travel with each image: all, none, or those of the artifact types listed';

/** As answers show it: a serializer told string-or-array would write a list of one as its string. */
const referrerSelection = { anyOf: [{ enum: ['all', 'none'] }, { type: 'array', items: { type: 'string' } }], description: REFERRERS } as const;

/**
 * As requests give it. Not the anyOf above: the validator coerces types (for querystrings), and
 * would take any string there as a list of one.
 */
export const referrerSelectionInput = { type: ['string', 'array'], pattern: '^(all|none)$', items: { type: 'string' }, description: REFERRERS } as const;

export const sharedSchemas = [
  {
    $id: 'Error',
    type: 'object',
    required: ['error', 'message'],
    properties: {
      error: { type: 'string' },
      message: { type: 'string' },
      field: { type: 'string', description: 'The offending request field, as body.trigger.schedule or querystring.limit' },
    },
  },
  {
    $id: 'Registry',
    ...object(
      {
        id: { type: 'string' },
        name: { type: 'string' },
        url: { type: 'string' },
        insecure: { type: 'boolean' },
        ca: nullableString,
        hasCredentials: { type: 'boolean' },
        username: nullableString,
        credentialHelper: { ...nullableString, description: 'The docker credential helper that gives the login, instead of stored credentials' },
        requestsPerSecond: { type: ['number', 'null'] },
        createdAt: timestamp,
        updatedAt: timestamp,
      },
      'A registry; its password is never shown',
    ),
  },
  {
    $id: 'RegistryBudget',
    ...object(
      {
        requestsPerSecond: { type: ['number', 'null'], description: 'The configured ceiling' },
        rate: { type: ['number', 'null'], description: 'The most requests per second this node sends now: the ceiling, or the slow-down after 429s; null: no limit' },
        pausedUntil: { ...nullableTimestamp, description: "No request before this: the registry's Retry-After" },
        pulls: {
          ...object({ limit: { type: 'integer' }, remaining: { type: 'integer' }, windowSeconds: { type: ['number', 'null'] }, resetAt: nullableTimestamp }),
          type: ['object', 'null'],
          description: 'Manifest GETs the registry allows per window and has left (RateLimit headers); null until it says',
        },
        waiting: { type: 'integer', description: 'Requests of this node waiting for the budget' },
      },
      "A registry's request budget as the node asked knows it",
    ),
  },
  {
    $id: 'Policy',
    ...object({
      id: { type: 'string' },
      name: { type: 'string' },
      enabled: { type: 'boolean' },
      sourceRegistryId: { type: 'string' },
      destinationRegistryId: { type: 'string' },
      repositories: filter,
      tags: { ...filter, required: [...filter.required, 'syntax'], properties: { ...filter.properties, syntax: { enum: ['glob', 'regex'] }, ...tagSelectionFields } },
      rewrite: object({ namespace: nullableString, flatten: { type: 'integer' } }),
      override: { type: 'boolean' },
      platforms: { type: 'array', items: { type: 'string' } },
      replicateDeletions: { type: 'boolean' },
      bandwidthKiBps: { type: ['number', 'null'] },
      trigger: { type: 'object', required: ['type'], properties: { type: { enum: TRIGGERS }, schedule: { type: 'string' } } },
      priority: { type: 'integer' },
      referrers: referrerSelection,
      requireSignature: {
        ...object({ key: { type: 'string' }, source: { type: 'string' } }),
        type: ['object', 'null'],
        description: 'The PEM public key whose cosign signature an image needs to be copied, and where it came from; null: none needed',
      },
      createdAt: timestamp,
      updatedAt: timestamp,
    }),
  },
  {
    $id: 'Execution',
    ...execution,
    // Only an execution shown alone counts them (it reads all its jobs).
    properties: { ...execution.properties, tagsFailed: { type: 'integer', description: 'Tags of its jobs that failed alone (shown for one execution)' } },
  },
  {
    $id: 'Job',
    ...object(
      {
        id: { type: 'string' },
        executionId: { type: 'string' },
        policyId: nullableString,
        operation: { enum: ['copy', 'delete'] },
        source: nullableString,
        destination: { type: 'string' },
        input: { description: 'The job machine input' },
        status: { enum: JOB_STATUSES },
        phase: nullableString,
        attempt: { type: 'integer' },
        progress: { type: 'object', additionalProperties: { type: 'number' } },
        error: {
          type: ['object', 'null'],
          required: ['code', 'message', 'transient'],
          properties: {
            code: { type: 'string' },
            message: { type: 'string' },
            transient: { type: 'boolean' },
            status: { type: 'integer' },
            retryAfterSeconds: { type: 'number' },
          },
        },
        priority: { type: 'integer' },
        node: { ...nullableString, description: 'The node that holds it (running or retrying), or held it last' },
        createdAt: timestamp,
        startedAt: nullableTimestamp,
        finishedAt: nullableTimestamp,
        updatedAt: timestamp,
      },
      'One repository of an execution',
    ),
  },
  {
    $id: 'Transition',
    ...object({
      seq: { type: 'integer' },
      from: nullableString,
      to: { type: 'string' },
      event: { type: 'string' },
      node: { ...nullableString, description: 'The node that took the step' },
      at: timestamp,
    }),
  },
  {
    $id: 'Node',
    ...object(
      {
        id: { type: 'string' },
        host: { type: 'string' },
        pid: { type: 'integer' },
        startedAt: timestamp,
        heartbeatAt: timestamp,
        draining: { type: 'boolean', description: 'Claims no more jobs and hands its own back' },
        jobsHeld: { type: 'integer' },
      },
      'A ferry serve process on the database',
    ),
  },
  {
    $id: 'JobLogEntry',
    ...object({
      seq: { type: 'integer' },
      at: timestamp,
      level: { type: 'string' },
      message: { type: 'string' },
      fields: { type: 'object', additionalProperties: true },
    }),
  },
];

export const ref = (id: string) => ({ $ref: `${id}#` }) as const;

export function list(id: string) {
  return object({ items: { type: 'array', items: ref(id) }, total: { type: 'integer' } });
}

export function errors(...statuses: number[]): Record<number, { $ref: string }> {
  return Object.fromEntries(statuses.map((status) => [status, ref('Error')]));
}

export interface IdParams {
  id: string;
}

export const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1 } } } as const;

/** What a listing gives when no limit is asked. */
export const DEFAULT_PAGE_SIZE = 100;

export const page = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: DEFAULT_PAGE_SIZE },
  offset: { type: 'integer', minimum: 0 },
} as const;

/** The querystring of a listing filtered by nothing else. */
export const pageQuery = { type: 'object', additionalProperties: false, properties: page } as const;

export const jobStatus = { enum: JOB_STATUSES } as const;
export const executionStatus = { enum: EXECUTION_STATUSES } as const;

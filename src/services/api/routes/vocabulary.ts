import type { FastifyPluginAsync } from 'fastify';
import { ACTIVE_STATUSES, ENDED_STATUSES, EXECUTION_STATUSES, JOB_STATUSES, RETRYABLE_STATUSES } from '../../../machines/status.js';
import { POLICY_DEFAULTS } from '../../domain/policy.js';
import { executionStatus, jobStatus } from '../schemas.js';

const VOCABULARY = {
  jobStatuses: JOB_STATUSES,
  executionStatuses: EXECUTION_STATUSES,
  active: [...ACTIVE_STATUSES],
  retryable: [...RETRYABLE_STATUSES],
  ended: [...ENDED_STATUSES],
  policyDefaults: POLICY_DEFAULTS,
};

const statuses = (items: object, description: string) => ({ type: 'array', items, description }) as const;

/** The job vocabulary as the machines define it, so that clients (the console) do not restate it. */
export const vocabularyRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/vocabulary',
    {
      schema: {
        tags: ['meta'],
        summary: 'Job and execution statuses, what each allows, and the settings of a new policy',
        response: {
          200: {
            type: 'object',
            required: Object.keys(VOCABULARY),
            properties: {
              jobStatuses: statuses(jobStatus, "A job's status: the top-level state of its machine, in the machine's order"),
              executionStatuses: statuses(executionStatus, "An execution's status, derived from its jobs'"),
              active: statuses(jobStatus, 'Statuses a job can still leave: STOP applies to them'),
              retryable: statuses(jobStatus, 'Ended statuses a retry starts over from'),
              ended: statuses(jobStatus, 'Final statuses: a job does not leave them on its own'),
              policyDefaults: { type: 'object', additionalProperties: true, description: 'What a new policy holds for each setting not given' },
            },
          },
        },
      },
    },
    () => VOCABULARY,
  );
};

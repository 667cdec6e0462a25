import { Cron } from 'croner';
import type { Logger } from 'pino';
import { planJobs, type PolicyScope } from './policy/plan-jobs.js';
import type { Registries } from './registry/registries.js';
import { OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST } from './registry/media-types.js';
import { RegistryError } from './registry/errors.js';
import type { Execution, ExecutionTrigger, Id, Job, NewJob, Policy, Store } from './store/types.js';

export interface SchedulerOptions {
  store: Store;
  registries: Registries;
  logger: Logger;
  /** Called with the jobs of each new execution, all pending. */
  queued: (jobs: Job[]) => void;
}

/** One event of distribution's notifications (`application/vnd.docker.distribution.events.v1+json`). */
export interface RegistryEvent {
  action?: string;
  target?: { mediaType?: string; repository?: string; tag?: string; digest?: string };
}

const MANIFEST_TYPES = new Set([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]);

/**
 * Turns triggers into executions: manual runs, cron schedules (each slot fires once, missed
 * slots are not made up after downtime) and registry notifications.
 */
export class Scheduler {
  readonly #options: SchedulerOptions;
  /** With the schedule as stored: croner gives nicknames (`@daily`) back expanded. */
  readonly #crons = new Map<Id, { cron: Cron; schedule: string }>();

  constructor(options: SchedulerOptions) {
    this.#options = options;
  }

  /** Resolves the policy into jobs (one per repository) and queues them as one execution. */
  async trigger(policy: Policy, trigger: ExecutionTrigger, scope: PolicyScope = { kind: 'all' }): Promise<{ execution: Execution; jobs: Job[] }> {
    const jobs = await this.#plan(policy, scope);
    return this.#queue(policy, trigger, jobs);
  }

  async #plan(policy: Policy, scope: PolicyScope) {
    const { store, registries } = this.#options;
    const [source, destination] = await Promise.all([store.registries.get(policy.sourceRegistryId), store.registries.get(policy.destinationRegistryId)]);
    if (!source || !destination) throw new RegistryError('INVALID_CONFIG', `policy ${policy.name}: its source or destination registry no longer exists`);
    return planJobs(policy, source, destination, registries, scope);
  }

  async #queue(policy: Policy, trigger: ExecutionTrigger, jobs: NewJob[]): Promise<{ execution: Execution; jobs: Job[] }>;
  async #queue(policy: Policy, trigger: ExecutionTrigger, jobs: NewJob[], coalesce: true): Promise<{ execution: Execution; jobs: Job[] } | undefined>;
  async #queue(policy: Policy, trigger: ExecutionTrigger, jobs: NewJob[], coalesce = false): Promise<{ execution: Execution; jobs: Job[] } | undefined> {
    const { store } = this.#options;
    const execution = { policyId: policy.id, trigger, jobs };
    const created = coalesce ? await store.executions.createCoalesced(execution) : await store.executions.create(execution);
    if (!created) {
      this.#options.logger.info({ policy: policy.name, trigger }, `policy ${policy.name}: ${trigger} run queued nothing: a pending job already covers it`);
      return undefined;
    }
    this.#options.logger.info({ policy: policy.name, execution: created.execution.id, trigger, jobs: created.jobs.length }, `policy ${policy.name}: ${trigger} run queued ${created.jobs.length} job(s)`);
    this.#options.queued(created.jobs);
    return created;
  }

  /**
   * Matches the schedules to the enabled cron policies (after start-up or any policy change).
   * A schedule croner refuses is logged and left out, never thrown: it can only have been
   * stored before schedules were checked when written, and must not keep the service (or the
   * other schedules) from starting.
   */
  async reload(): Promise<void> {
    const { store, logger } = this.#options;
    const policies = (await store.policies.list()).items.filter((p) => p.enabled && p.trigger.type === 'cron');
    const wanted = new Map(policies.map((p) => [p.id, p.trigger]));
    for (const [id, { cron, schedule }] of this.#crons) {
      const trigger = wanted.get(id);
      if (trigger?.type !== 'cron' || trigger.schedule !== schedule) {
        cron.stop();
        this.#crons.delete(id);
      }
    }
    for (const policy of policies) {
      if (this.#crons.has(policy.id) || policy.trigger.type !== 'cron') continue;
      const { schedule } = policy.trigger;
      try {
        const cron = new Cron(schedule, { protect: true, catch: true, unref: true }, (self: Cron) => this.#fire(policy.id, self));
        this.#crons.set(policy.id, { cron, schedule });
      } catch (error) {
        logger.error(
          { err: error, policy: policy.name },
          `policy ${policy.name}: schedule ${JSON.stringify(schedule)} is not a cron schedule (${(error as Error).message}); it does not run until the policy gets one`,
        );
      }
    }
  }

  /** A registry's notifications: pushed tags are copied, deletions replicated where asked. */
  async notify(registryId: Id, events: RegistryEvent[]): Promise<Execution[]> {
    const policies = (await this.#options.store.policies.list()).items.filter(
      (p) => p.enabled && p.trigger.type === 'event' && p.sourceRegistryId === registryId,
    );
    const executions: Execution[] = [];
    for (const event of events) {
      const scope = eventScope(event);
      if (!scope) continue;
      for (const policy of policies) {
        // An event outside the policy's filters is no run of it: no empty execution.
        const jobs = await this.#plan(policy, scope);
        const queued = jobs.length > 0 ? await this.#queue(policy, 'event', jobs, true) : undefined;
        if (queued) executions.push(queued.execution);
      }
    }
    return executions;
  }

  close(): void {
    for (const { cron } of this.#crons.values()) cron.stop();
    this.#crons.clear();
  }

  async #fire(policyId: Id, cron: Cron): Promise<void> {
    const { store, logger } = this.#options;
    // The slot is the scheduled time, not the moment the timer ran: two instances (or a
    // restart within the same slot) claim the same slot, and only one wins.
    const slot = cron.previousRuns(1, new Date(Date.now() + 1))[0];
    if (!slot || !(await store.policies.claimCronSlot(policyId, slot.toISOString()))) return;
    const policy = await store.policies.get(policyId);
    if (!policy?.enabled) return;
    try {
      await this.trigger(policy, 'cron');
    } catch (error) {
      logger.error({ err: error, policy: policy.name }, `policy ${policy.name}: scheduled run failed to start: ${(error as Error).message}`);
    }
  }
}

/** Tagged manifest pushes and manifest deletions; blob and pull events are not replication's business. */
function eventScope(event: RegistryEvent): PolicyScope | undefined {
  const target = event.target;
  if (!target?.repository) return undefined;
  if (event.action === 'push' && target.tag && (!target.mediaType || MANIFEST_TYPES.has(target.mediaType))) {
    return { kind: 'push', repository: target.repository, tag: target.tag };
  }
  if (event.action === 'delete' && (target.tag || target.digest)) {
    return { kind: 'delete', repository: target.repository, ...(target.tag ? { tag: target.tag } : { digest: target.digest! }) };
  }
  return undefined;
}

import { checkPolicy, checkPolicyPatch, type PolicyDraft, type PolicyFields } from '../domain/policy.js';
import { checkRegistry, checkRegistryPatch, type RegistrySettings } from '../domain/registry.js';
import type { Logger } from 'pino';
import { previewPolicy, type PolicyPreview } from '../policy/preview.js';
import type { Registries } from '../registry/registries.js';
import type { Scheduler } from '../scheduler.js';
import { ConflictError } from '../store/errors.js';
import type { Execution, Id, Job, Policy, Registry, RegistryInput, Store } from '../store/types.js';
import { conflict, found, UnknownRecordError } from './errors.js';
import type { JobControl } from './jobs.js';

/**
 * Registries and policies, changed the one way whoever asks (the API, ferry.yaml, the CLI):
 * checked by the domain rules, stored, and announced, so that every node reloads the
 * schedules of changed policies; and policies run on demand.
 */
export class Settings {
  readonly #store: Store;
  readonly #clients: Registries;
  readonly #scheduler: Scheduler;
  readonly #control: Pick<JobControl, 'stopExecution'>;

  constructor(store: Store, clients: Registries, scheduler: Scheduler, control: Pick<JobControl, 'stopExecution'>) {
    this.#store = store;
    this.#clients = clients;
    this.#scheduler = scheduler;
    this.#control = control;
  }

  async registry(id: Id): Promise<Registry> {
    return found(await this.#store.registries.get(id), 'registry', id);
  }

  async policy(id: Id): Promise<Policy> {
    return found(await this.#store.policies.get(id), 'policy', id);
  }

  addRegistry(input: RegistryInput): Promise<Registry> {
    return this.#store.registries.create(checkRegistry(input));
  }

  async updateRegistry(id: Id, patch: Partial<RegistryInput>): Promise<Registry> {
    const checked = checkRegistryPatch(patch);
    const before = await this.registry(id);
    const after = found(await this.#store.registries.update(id, checked), 'registry', id);
    const reconnect = after.url !== before.url || after.insecure !== before.insecure || after.ca !== before.ca || after.requestsPerSecond !== before.requestsPerSecond;
    if (checked.credentials !== undefined || checked.credentialHelper !== undefined || reconnect) {
      await this.#reconnect([before.url, after.url]);
    }
    return after;
  }

  async deleteRegistry(id: Id): Promise<void> {
    const registry = await this.registry(id);
    if (!(await this.#store.registries.delete(id))) {
      const users = (await this.#store.policies.list()).items.filter((p) => p.sourceRegistryId === id || p.destinationRegistryId === id);
      throw conflict(`registry ${registry.name} is used by ${users.map((p) => `policy ${p.name}`).join(', ') || 'a policy'}`);
    }
    await this.#reconnect([registry.url]);
  }

  async addPolicy(input: PolicyDraft): Promise<Policy> {
    const policy = await this.#store.policies.create(await checkPolicy(input, this.#registryExists));
    await this.#policiesChanged();
    return policy;
  }

  async updatePolicy(id: Id, patch: Partial<PolicyDraft>): Promise<Policy> {
    await this.policy(id);
    const policy = found(await this.#store.policies.update(id, await checkPolicyPatch(patch, this.#registryExists)), 'policy', id);
    await this.#policiesChanged();
    return policy;
  }

  /** Refused while the policy's executions are under way, unless asked to stop them first. */
  async deletePolicy(id: Id, { stop = false }: { stop?: boolean } = {}): Promise<void> {
    const policy = await this.policy(id);
    if (stop) for (const execution of await this.#underWay(id)) await this.#control.stopExecution(execution.id).catch(() => undefined);
    const { deleted, underWay } = await this.#store.policies.delete(id, { ifIdle: !stop });
    if (underWay > 0) throw conflict(`policy ${policy.name} has ${underWay} execution(s) under way: stop them, or delete it with stop=true`);
    if (!deleted) throw new UnknownRecordError(`no policy ${id}`);
    await this.#policiesChanged();
  }

  /** Runs an enabled policy now: one job per repository, queued as one execution. */
  async trigger(id: Id): Promise<{ execution: Execution; jobs: Job[] }> {
    const policy = await this.policy(id);
    if (!policy.enabled) throw conflict(`policy ${policy.name} is disabled`);
    return this.#scheduler.trigger(policy, 'manual');
  }

  /** What a policy would copy if it ran now, stored or not: a bounded dry run against its registries. */
  async previewPolicy(input: PolicyDraft, logger: Logger, cancel: AbortSignal): Promise<PolicyPreview> {
    const policy = await checkPolicy(input, this.#registryExists);
    const [source, destination] = await Promise.all([this.registry(policy.sourceRegistryId), this.registry(policy.destinationRegistryId)]);
    return previewPolicy(policy, source, destination, { registries: this.#clients, logger }, cancel);
  }

  /**
   * Creates the registry of that name or brings it to these settings (ferry.yaml). Nodes that
   * apply the same file at once converge: whoever loses the race to create updates instead.
   */
  saveRegistry(settings: Partial<RegistrySettings> & Pick<RegistrySettings, 'name' | 'url'>): Promise<Registry> {
    return upsert(
      () => this.#store.registries.findByName(settings.name),
      (existing) => this.#store.registries.update(existing.id, settings),
      () => this.#store.registries.create(settings),
    );
  }

  /** Creates the policy of that name or brings it to these settings (ferry.yaml); see saveRegistry. */
  async savePolicy(fields: Partial<PolicyFields> & Pick<PolicyFields, 'name' | 'sourceRegistryId' | 'destinationRegistryId'>): Promise<Policy> {
    const policy = await upsert(
      () => this.#store.policies.findByName(fields.name),
      (existing) => this.#store.policies.update(existing.id, fields),
      () => this.#store.policies.create(fields),
    );
    await this.#policiesChanged();
    return policy;
  }

  async #underWay(policyId: Id): Promise<Execution[]> {
    const [pending, running] = await Promise.all(
      (['pending', 'running'] as const).map(async (status) => (await this.#store.executions.list({ policyId, status, limit: 1000 })).items),
    );
    return [...pending!, ...running!];
  }

  readonly #registryExists = async (id: Id) => (await this.#store.registries.get(id)) !== undefined;

  /** Every node drops its connections to these registries, to connect again with what is stored now. */
  async #reconnect(urls: string[]): Promise<void> {
    for (const url of urls) this.#clients.forget(url);
    await this.#store.signals.publish({ type: 'registries', urls });
  }

  /** Every node, this one included, matches its schedules to the policies again. */
  #policiesChanged(): Promise<void> {
    return this.#store.signals.publish({ type: 'policies' });
  }
}

async function upsert<T>(find: () => Promise<T | undefined>, update: (existing: T) => Promise<T | undefined>, create: () => Promise<T>): Promise<T> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await find();
    if (existing) {
      const updated = await update(existing);
      if (updated) return updated;
      continue;
    }
    try {
      return await create();
    } catch (error) {
      // Another node created it between the look and the write: update that one.
      if (!(error instanceof ConflictError) || attempt > 0) throw error;
    }
  }
  throw new ConflictError('it changed under this write three times; try again');
}

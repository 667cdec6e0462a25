import { ACTIVE_STATUSES } from '../../../machines/status.js';
import { POLICY_DEFAULTS } from '../../domain/policy.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { Policy, PolicyStore } from '../types.js';
import { count, paged, unique, write, type Database, type Executor } from './database.js';
import { defined, newId, now, policyRow, toPolicy } from './rows.js';

const COLUMNS = [
  'id',
  'name',
  'enabled',
  'source_registry_id',
  'destination_registry_id',
  'repositories',
  'tags',
  'rewrite',
  'override',
  'platforms',
  'replicate_deletions',
  'bandwidth_kibps',
  'trigger',
  'priority',
  'referrers',
  'require_signature',
  'created_at',
  'updated_at',
] as const;

async function read(trx: Executor, column: 'id' | 'name', value: string): Promise<Policy | undefined> {
  const found = await trx.selectFrom('policies').select(COLUMNS).where(column, '=', value).executeTakeFirst();
  return found && toPolicy(found);
}

async function assertWritable(trx: Executor, policy: Policy): Promise<void> {
  const holder = await trx.selectFrom('policies').select('id').where('name', '=', policy.name).executeTakeFirst();
  if (holder !== undefined && holder.id !== policy.id) throw new ConflictError(`policy name ${JSON.stringify(policy.name)} is already taken`);
  for (const registryId of [policy.sourceRegistryId, policy.destinationRegistryId]) {
    const registry = await trx.selectFrom('registries').select('id').where('id', '=', registryId).executeTakeFirst();
    if (registry === undefined) throw new NotFoundError(`registry ${registryId} does not exist`);
  }
}

export function policyStore(database: Database): PolicyStore {
  const { db } = database;
  return {
    create: (input) =>
      unique(`policy name ${JSON.stringify(input.name)}`, () =>
        write(database, async (trx) => {
          const at = now();
          const policy: Policy = { ...POLICY_DEFAULTS, ...defined(input), id: newId(), createdAt: at, updatedAt: at };
          await assertWritable(trx, policy);
          await trx.insertInto('policies').values(policyRow(policy)).execute();
          return policy;
        }),
      ),
    get: (id) => read(db, 'id', id),
    findByName: (name) => read(db, 'name', name),
    list: async (page = {}) => ({
      items: (await paged(db.selectFrom('policies').select(COLUMNS).orderBy('name'), page).execute()).map(toPolicy),
      total: await count(db.selectFrom('policies')),
    }),
    update: (id, patch) =>
      unique(`policy name ${JSON.stringify(patch.name ?? id)}`, () =>
        write(database, async (trx) => {
          const current = await read(trx, 'id', id);
          if (current === undefined) return undefined;
          const policy: Policy = { ...current, ...defined(patch), id, createdAt: current.createdAt, updatedAt: now() };
          await assertWritable(trx, policy);
          const { id: _id, created_at: _created, ...fields } = policyRow(policy);
          await trx.updateTable('policies').set(fields).where('id', '=', id).execute();
          return policy;
        }),
      ),
    delete: (id, { ifIdle = false } = {}) =>
      write(database, async (trx) => {
        // The row lock waits for an execution of the policy being created (which holds the row
        // FOR SHARE), so the count below sees its jobs; one created after waits for the delete.
        const policy = await trx.selectFrom('policies').select('id').where('id', '=', id).$if(database.dialect.rowLocks, (q) => q.forUpdate()).executeTakeFirst();
        if (policy === undefined) return { deleted: false, underWay: 0 };
        if (ifIdle) {
          const { underWay } = await trx
            .selectFrom('jobs')
            .select((eb) => eb.fn.count<number>('execution_id').distinct().as('underWay'))
            .where('policy_id', '=', id)
            .where('status', 'in', [...ACTIVE_STATUSES])
            .executeTakeFirstOrThrow();
          if (Number(underWay) > 0) return { deleted: false, underWay: Number(underWay) };
        }
        await trx.deleteFrom('policies').where('id', '=', id).execute();
        return { deleted: true, underWay: 0 };
      }),
    claimCronSlot: async (policyId, slot) => {
      const at = new Date(slot).toISOString();
      const claimed = await db
        .updateTable('policies')
        .set({ last_cron_slot: at })
        .where('id', '=', policyId)
        .where((eb) => eb.or([eb('last_cron_slot', 'is', null), eb('last_cron_slot', '<', at)]))
        .executeTakeFirst();
      return claimed.numUpdatedRows === 1n;
    },
  };
}

import type { Insertable, Selectable } from 'kysely';
import { INITIAL_BUDGET, type BudgetState } from '../../registry/budget.js';
import type { RegistryBudgetStore } from '../types.js';
import { write, type Database } from './database.js';
import type { RegistryBudgetsTable } from './schema.js';

const at = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const ms = (iso: string | null): number | null => (iso === null ? null : Date.parse(iso));

function toState(row: Selectable<RegistryBudgetsTable>): BudgetState {
  return {
    rate: row.rate,
    decreasedAt: ms(row.decreased_at),
    pausedUntil: ms(row.paused_until),
    pulls: row.pulls,
    limit: row.pull_limit,
    remaining: row.pull_remaining,
    windowSeconds: row.window_seconds,
    resetAt: ms(row.reset_at),
    probeUntil: ms(row.probe_until),
  };
}

function toRow(registry: string, state: BudgetState, updatedAt: string): Insertable<RegistryBudgetsTable> {
  return {
    registry,
    rate: state.rate,
    decreased_at: at(state.decreasedAt),
    paused_until: at(state.pausedUntil),
    pulls: state.pulls,
    pull_limit: state.limit,
    pull_remaining: state.remaining,
    window_seconds: state.windowSeconds,
    reset_at: at(state.resetAt),
    probe_until: at(state.probeUntil),
    updated_at: updatedAt,
  };
}

/**
 * Every change reads and writes the row in one transaction, locked on PostgreSQL (SQLite's
 * write transactions take the file): two nodes taking pulls at once never take the same one.
 */
export function registryBudgetStore(database: Database): RegistryBudgetStore {
  const { dialect } = database;
  return {
    update: (registry, change) =>
      write(database, async (trx) => {
        const locked = () => {
          const query = trx.selectFrom('registry_budgets').selectAll().select(dialect.now().as('now')).where('registry', '=', registry);
          return (dialect.rowLocks ? query.forUpdate() : query).executeTakeFirst();
        };
        let row = await locked();
        if (!row) {
          // Two nodes meeting a registry at once: the second waits for the first's row, then locks it.
          const { now } = await trx.selectNoFrom(dialect.now().as('now')).executeTakeFirstOrThrow();
          await trx.insertInto('registry_budgets').values(toRow(registry, INITIAL_BUDGET, now)).onConflict((conflict) => conflict.column('registry').doNothing()).execute();
          row = (await locked())!;
        }
        const { now, ...stored } = row;
        const state = toState(stored);
        const [next, result] = change(state, Date.parse(now));
        if (next !== state) {
          const { registry: _key, ...values } = toRow(registry, next, now);
          await trx.updateTable('registry_budgets').set(values).where('registry', '=', registry).execute();
        }
        return result;
      }),
  };
}

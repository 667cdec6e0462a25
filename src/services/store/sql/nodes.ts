import type { NodeStore } from '../types.js';
import { count, paged, type Database } from './database.js';
import { flag } from './rows.js';

export function nodeStore({ db, dialect }: Database): NodeStore {
  return {
    register: async (node) => {
      const values = { host: node.host, pid: node.pid, started_at: dialect.now(), heartbeat_at: dialect.now(), draining: false };
      await db
        .insertInto('nodes')
        .values({ id: node.id, ...values })
        .onConflict((conflict) => conflict.column('id').doUpdateSet(values))
        .execute();
    },
    heartbeat: async (id) => {
      await db.updateTable('nodes').set({ heartbeat_at: dialect.now() }).where('id', '=', id).execute();
    },
    drain: async (id) => {
      await db.updateTable('nodes').set({ draining: true }).where('id', '=', id).execute();
    },
    remove: async (id) => {
      await db.deleteFrom('nodes').where('id', '=', id).execute();
    },
    list: async (staleAfterMs, page = {}) => {
      const alive = dialect.later(-staleAfterMs);
      const rows = await paged(
        db
          .selectFrom('nodes as n')
          .select((eb) => [
            'n.id',
            'n.host',
            'n.pid',
            'n.started_at',
            'n.heartbeat_at',
            'n.draining',
            eb
              .selectFrom('jobs')
              .select((inner) => inner.fn.countAll<number>().as('held'))
              .whereRef('jobs.owner', '=', 'n.id')
              .where('jobs.status', 'in', ['running', 'retrying'])
              .where('jobs.lease_until', 'is not', null)
              .as('held'),
          ])
          .where('n.heartbeat_at', '>', alive)
          .orderBy('n.started_at')
          .orderBy('n.id'),
        page,
      ).execute();
      const items = rows.map((row) => ({
        id: row.id,
        host: row.host,
        pid: Number(row.pid),
        startedAt: row.started_at,
        heartbeatAt: row.heartbeat_at,
        draining: flag(row.draining),
        jobsHeld: Number(row.held ?? 0),
      }));
      return { items, total: await count(db.selectFrom('nodes').where('heartbeat_at', '>', alive)) };
    },
  };
}

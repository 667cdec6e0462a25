import type { ExpressionBuilder } from 'kysely';
import type { BlobUpload, BlobUploadStore } from '../types.js';
import type { Database } from './database.js';
import type { SqlDialect } from './dialect.js';
import type { Tables } from './schema.js';

/** A claim counts while it has not run out and, for an upload under way, while its node's heartbeat is recent. */
function counts(eb: ExpressionBuilder<Tables, 'blob_uploads'>, dialect: SqlDialect, staleAfterMs: number) {
  return eb.and([
    eb('blob_uploads.expires_at', '>=', dialect.now()),
    eb.or([
      eb('blob_uploads.state', '=', 'done'),
      eb.exists(eb.selectFrom('nodes').select('nodes.id').whereRef('nodes.id', '=', 'blob_uploads.node').where('nodes.heartbeat_at', '>', dialect.later(-staleAfterMs))),
    ]),
  ]);
}

export function blobUploadStore({ db, dialect }: Database): BlobUploadStore {
  const live = (row: { repository: string; node: string; state: 'uploading' | 'done' } | undefined): BlobUpload | undefined =>
    row && { repository: row.repository, node: row.node, state: row.state };

  return {
    claim: async (upload, ttlMs, staleAfterMs) => {
      // One statement: insert, or take over a claim that ran out; else nothing changes and the
      // live claim is read back. One given up in between is claimed on the next turn.
      for (;;) {
        const claimed = await db
          .insertInto('blob_uploads')
          .values({ ...upload, state: 'uploading', expires_at: dialect.later(ttlMs) })
          .onConflict((conflict) =>
            conflict
              .columns(['registry', 'digest'])
              .doUpdateSet({ repository: upload.repository, node: upload.node, state: 'uploading', expires_at: dialect.later(ttlMs) })
              .where((eb) => eb.not(counts(eb, dialect, staleAfterMs))),
          )
          .returning('node')
          .executeTakeFirst();
        if (claimed?.node === upload.node) return undefined;
        const holder = await db
          .selectFrom('blob_uploads')
          .select(['repository', 'node', 'state'])
          .where('registry', '=', upload.registry)
          .where('digest', '=', upload.digest)
          .executeTakeFirst();
        if (holder) return live(holder);
      }
    },
    renew: async (upload, ttlMs) => {
      await db
        .updateTable('blob_uploads')
        .set({ expires_at: dialect.later(ttlMs) })
        .where('registry', '=', upload.registry)
        .where('digest', '=', upload.digest)
        .where('node', '=', upload.node)
        .where('state', '=', 'uploading')
        .execute();
    },
    finish: async (upload, uploaded, ttlMs) => {
      const mine = db.updateTable('blob_uploads').where('registry', '=', upload.registry).where('digest', '=', upload.digest).where('node', '=', upload.node);
      if (uploaded) await mine.set({ state: 'done', expires_at: dialect.later(ttlMs) }).execute();
      else await db.deleteFrom('blob_uploads').where('registry', '=', upload.registry).where('digest', '=', upload.digest).where('node', '=', upload.node).execute();
    },
    forgetExpired: async () => Number((await db.deleteFrom('blob_uploads').where('expires_at', '<', dialect.now()).executeTakeFirst()).numDeletedRows),
    find: async (registry, digest, staleAfterMs) =>
      live(
        await db
          .selectFrom('blob_uploads')
          .select(['repository', 'node', 'state'])
          .where('registry', '=', registry)
          .where('digest', '=', digest)
          .where((eb) => counts(eb, dialect, staleAfterMs))
          .executeTakeFirst(),
      ),
  };
}

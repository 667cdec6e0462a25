import { ConflictError } from '../errors.js';
import { Keyring, SecretKeyError } from '../secrets.js';
import type { Id, Registry, RegistryInput, RegistryStore } from '../types.js';
import { count, paged, unique, write, type Database, type Executor } from './database.js';
import { defined, flag, newId, now, toRegistry, type NewRegistryRow, type RegistryRow } from './rows.js';

type RegistrySettings = Required<RegistryInput>;

const PUBLIC_COLUMNS = ['id', 'name', 'url', 'insecure', 'ca', 'username', 'credential_helper', 'requests_per_second', 'created_at', 'updated_at'] as const;

/** The row as stored, its password sealed. */
function row(keyring: Keyring, id: Id, settings: RegistrySettings, createdAt: string, updatedAt: string): Required<NewRegistryRow> {
  return {
    id,
    name: settings.name,
    url: settings.url,
    insecure: settings.insecure,
    ca: settings.ca,
    username: settings.credentials?.username ?? null,
    password: settings.credentials ? keyring.seal(settings.credentials.password, id) : null,
    credential_helper: settings.credentialHelper,
    requests_per_second: settings.requestsPerSecond,
    created_at: createdAt,
    updated_at: updatedAt,
  };
}

/** The settings of a stored row but its credentials, which stay sealed as they are. */
function settingsOf(row: RegistryRow): RegistrySettings {
  return { name: row.name, url: row.url, insecure: flag(row.insecure), ca: row.ca, credentials: null, credentialHelper: row.credential_helper, requestsPerSecond: row.requests_per_second };
}

/** Names identify registries for people, URLs for jobs (their settings are found by URL). */
async function assertFree(trx: Executor, { name, url }: { name?: string | undefined; url?: string | undefined }, id?: Id): Promise<void> {
  if (name !== undefined) {
    const holder = await trx.selectFrom('registries').select('id').where('name', '=', name).executeTakeFirst();
    if (holder !== undefined && holder.id !== id) throw new ConflictError(`registry name ${JSON.stringify(name)} is already taken`);
  }
  if (url !== undefined) {
    const holder = await trx.selectFrom('registries').select(['id', 'name']).where('url', '=', url).executeTakeFirst();
    if (holder !== undefined && holder.id !== id) throw new ConflictError(`registry ${holder.name} already has URL ${url}`);
  }
}

const KEY_CHECK = 'ferry secret key check';
const KEY_CHECK_CONTEXT = 'secret_key_check';

/** Opens the key check with the keyring (sealing it first if there is none yet), and seals it again with the keyring's current key. */
async function checkKey(trx: Executor, keyring: Keyring): Promise<void> {
  await trx.insertInto('secret_key_check').values({ id: 1, sealed: keyring.seal(KEY_CHECK, KEY_CHECK_CONTEXT) }).onConflict((oc) => oc.column('id').doNothing()).execute();
  const { sealed } = await trx.selectFrom('secret_key_check').select('sealed').where('id', '=', 1).executeTakeFirstOrThrow();
  if (keyring.open(sealed, KEY_CHECK_CONTEXT, "this database's key check (the secret key every node of the database must share)") !== KEY_CHECK) throw new SecretKeyError("this database's key check holds another value");
  if (!keyring.sealedNow(sealed)) await trx.updateTable('secret_key_check').set({ sealed: keyring.seal(KEY_CHECK, KEY_CHECK_CONTEXT) }).where('id', '=', 1).execute();
}

export function registryStore(database: Database, keyring: Keyring): RegistryStore {
  const { db } = database;
  const one = async (column: 'id' | 'name' | 'url', value: string): Promise<Registry | undefined> => {
    const found = await db.selectFrom('registries').select(PUBLIC_COLUMNS).where(column, '=', value).executeTakeFirst();
    return found && toRegistry(found);
  };

  return {
    create: (input) =>
      unique(`registry ${JSON.stringify(input.name)} or its URL`, () =>
        write(database, async (trx) => {
          await assertFree(trx, input);
          const at = now();
          const created = row(keyring, newId(), { insecure: false, ca: null, credentials: null, credentialHelper: null, requestsPerSecond: null, ...defined(input) }, at, at);
          await trx.insertInto('registries').values(created).execute();
          return toRegistry(created);
        }),
      ),
    get: (id) => one('id', id),
    findByName: (name) => one('name', name),
    findByUrl: (url) => one('url', url),
    list: async (page = {}) => ({
      items: (await paged(db.selectFrom('registries').select(PUBLIC_COLUMNS).orderBy('name'), page).execute()).map(toRegistry),
      total: await count(db.selectFrom('registries')),
    }),
    update: (id, patch) =>
      unique(`registry ${JSON.stringify(patch.name ?? id)} or its URL`, () =>
        write(database, async (trx) => {
          const current = await trx.selectFrom('registries').selectAll().where('id', '=', id).executeTakeFirst();
          if (current === undefined) return undefined;
          await assertFree(trx, patch, id);
          const updated = row(keyring, id, { ...settingsOf(current), ...defined(patch) }, current.created_at, now());
          if (patch.credentials === undefined && patch.credentialHelper == null) Object.assign(updated, { username: current.username, password: current.password });
          const { id: _id, created_at: _created, ...fields } = updated;
          await trx.updateTable('registries').set(fields).where('id', '=', id).execute();
          return toRegistry(updated);
        }),
      ),
    delete: (id) =>
      write(database, async (trx) => {
        const used = await trx
          .selectFrom('policies')
          .select('id')
          .where((eb) => eb.or([eb('source_registry_id', '=', id), eb('destination_registry_id', '=', id)]))
          .limit(1)
          .executeTakeFirst();
        if (used !== undefined) return false;
        const deleted = await trx.deleteFrom('registries').where('id', '=', id).executeTakeFirst();
        return deleted.numDeletedRows > 0n;
      }),
    credentials: async (id) => {
      const found = await db.selectFrom('registries').select(['name', 'username', 'password']).where('id', '=', id).executeTakeFirst();
      if (found?.username == null || found.password === null) return undefined;
      return { username: found.username, password: keyring.open(found.password, id, `the password of registry ${found.name}`) };
    },
    reseal: () =>
      write(database, async (trx) => {
        const rows = await trx.selectFrom('registries').select(['id', 'name', 'password']).where('password', 'is not', null).execute();
        let sealed = 0;
        for (const { id, name, password } of rows) {
          if (password === null || keyring.sealedNow(password)) continue;
          const plain = Keyring.isSealed(password) ? keyring.open(password, id, `the password of registry ${name}`) : password;
          await trx.updateTable('registries').set({ password: keyring.seal(plain, id) }).where('id', '=', id).execute();
          sealed++;
        }
        await checkKey(trx, keyring);
        return sealed;
      }),
  };
}

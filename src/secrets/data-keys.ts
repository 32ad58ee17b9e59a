import { randomBytes } from 'node:crypto';
import { UserError } from '../core/index.ts';
import type { DataKeyRecord, Store } from '../store/index.ts';
import { SealError, sealingKeysFromRoot, type KeyProvider, type SealingKeys } from './keys.ts';
import { AppDataKey, SecretIntegrityError } from './values.ts';

/** SERVER_KEY_OWNER is the data_keys owner of the server's own root key (TOTP secrets, edge keys). */
export const SERVER_KEY_OWNER = 'server';

/**
 * serverKeyContext and appKeyContext are the contexts data keys are wrapped under: a wrapped key copied
 * to another owner's row does not unwrap there.
 */
export const serverKeyContext = (): string => 'ward/data-key/server';
export const appKeyContext = (orgId: string, appId: string): string => `ward/data-key/app/${orgId}/${appId}`;

/**
 * wrappedKeyContext is the context a stored data key was wrapped under; for an app key it needs the
 * app's org, which the caller looks up.
 */
export function wrappedKeyContext(k: DataKeyRecord, orgIdOfApp: string | undefined): string {
  if (k.owner === SERVER_KEY_OWNER) return serverKeyContext();
  if (k.appId === null || orgIdOfApp === undefined) throw new Error(`data key ${k.owner} belongs to no known app`);
  return appKeyContext(orgIdOfApp, k.appId);
}

/**
 * isOwnerConflict recognises the store's StoreConflictError for a second data key of one owner by its
 * rule name, so this folder needs the store's types only: the CLI imports it without the database drivers.
 */
function isOwnerConflict(e: unknown): boolean {
  return (e as { constraint?: unknown } | null)?.constraint === 'data_keys.owner';
}

/** masterKeyMismatch is the start-up error for a store whose keys another master key wrapped. */
function masterKeyMismatch(e: SealError): UserError {
  return new UserError('invalid_config', `the master key cannot open this database's keys: ${e.message}`, {
    hint: 'start with the --master-key-file this database was used with (every control plane on one database needs the same file); see docs/security.md "Master key"',
    cause: e,
  });
}

/**
 * openSealingKeys returns the SealingKeys the server seals its own values with (TOTP secrets, edge
 * keys): derived from a root data key kept wrapped in the store, created on first start. Control planes
 * sharing a database share the root key, as they must: each can open what another sealed. A master key
 * that cannot unwrap it is refused at start with `invalid_config`, never discovered later on a login.
 */
export async function openSealingKeys(store: Store, keys: KeyProvider, now: () => string): Promise<SealingKeys> {
  let record = await store.dataKeys.get(SERVER_KEY_OWNER);
  if (!record) {
    const root = randomBytes(32);
    try {
      await store.dataKeys.create({
        owner: SERVER_KEY_OWNER,
        appId: null,
        wrapped: await keys.wrap(root, serverKeyContext()),
        kekId: keys.keyId,
        createdAt: now(),
        rewrappedAt: null,
      });
      return sealingKeysFromRoot(root);
    } catch (e) {
      // Another control plane made it first; use theirs.
      if (!isOwnerConflict(e)) throw e;
      record = (await store.dataKeys.get(SERVER_KEY_OWNER))!;
    }
  }
  try {
    return sealingKeysFromRoot(await keys.unwrap(record.wrapped, serverKeyContext()));
  } catch (e) {
    if (e instanceof SealError) throw masterKeyMismatch(e);
    throw e;
  }
}

/** AppRef is what AppKeys needs of an app: its id and its org's (both bound into the wrapped key). */
export interface AppRef {
  id: string;
  orgId: string;
}

/**
 * AppKeys hands out apps' data keys: a random 256-bit key per app, made on the app's first secret and
 * kept in the store only wrapped by the KEK. Unwrapped keys are cached in memory by their wrapped form,
 * so a re-wrap (KEK rotation) simply misses the cache; nothing unwrapped is ever written anywhere.
 */
export class AppKeys {
  readonly #keys: KeyProvider;
  readonly #now: () => string;
  readonly #cache = new Map<string, AppDataKey>();

  constructor(keys: KeyProvider, now: () => string) {
    this.#keys = keys;
    this.#now = now;
  }

  /** keyProvider is the KEK provider these keys are wrapped by. */
  get keyProvider(): KeyProvider {
    return this.#keys;
  }

  /**
   * get returns the app's data key, or undefined when the app has none yet. A stored key that does not
   * unwrap (altered, moved from another app, or another master key) throws SecretIntegrityError.
   */
  async get(store: Store, app: AppRef): Promise<AppDataKey | undefined> {
    const record = await store.dataKeys.get(app.id);
    if (!record) return undefined;
    return this.#open(app, record);
  }

  /**
   * getOrCreate returns the app's data key, making one if it has none. Call it inside the transaction
   * that stores the first secret, so a failed change leaves no key behind; two racing first changes end
   * with one key (the loser re-reads the winner's).
   */
  async getOrCreate(store: Store, app: AppRef): Promise<AppDataKey> {
    const existing = await this.get(store, app);
    if (existing) return existing;
    const dataKey = randomBytes(32);
    const wrapped = await this.#keys.wrap(dataKey, appKeyContext(app.orgId, app.id));
    try {
      await store.dataKeys.create({ owner: app.id, appId: app.id, wrapped, kekId: this.#keys.keyId, createdAt: this.#now(), rewrappedAt: null });
    } catch (e) {
      if (!isOwnerConflict(e)) throw e;
      return (await this.get(store, app))!;
    }
    const key = new AppDataKey(app.id, dataKey);
    this.#cache.set(`${app.id}\n${wrapped}`, key);
    return key;
  }

  async #open(app: AppRef, record: DataKeyRecord): Promise<AppDataKey> {
    const cacheKey = `${app.id}\n${record.wrapped}`;
    const cached = this.#cache.get(cacheKey);
    if (cached) return cached;
    if (record.appId !== app.id) throw new SecretIntegrityError(`the data key stored for app ${app.id} names app ${record.appId}`, { appId: app.id });
    let dataKey: Buffer;
    try {
      dataKey = await this.#keys.unwrap(record.wrapped, appKeyContext(app.orgId, app.id));
    } catch (e) {
      if (!(e instanceof SealError)) throw e;
      throw new SecretIntegrityError(`the data key of app ${app.id} does not unwrap: ${e.message}`, { appId: app.id });
    }
    const key = new AppDataKey(app.id, dataKey);
    this.#cache.set(cacheKey, key);
    return key;
  }
}

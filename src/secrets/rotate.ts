import { link, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { wrappedKeyContext } from './data-keys.ts';
import { createKeyFile, keyProviderFromBytes, nextKeyFile, readKeyFile, SealError, type KeyProvider } from './keys.ts';

/** RewrapResult says what a re-wrap did: how many data keys moved to the current KEK, and how many were there already. */
export interface RewrapResult {
  rewrapped: number;
  alreadyCurrent: number;
}

/**
 * rewrapDataKeys re-wraps every data key in the store that another KEK wrapped under `keys`' current
 * KEK, in the caller's transaction. `keys` must still unwrap the old ones (the local provider during a
 * rotation holds both; a KMS keeps old key versions for decryption). Values are not touched: they are
 * encrypted under the data keys, which do not change. Keys already under the current KEK are skipped,
 * so running it again after an interruption finishes the job.
 */
export async function rewrapDataKeys(tx: Store, keys: KeyProvider, at: string): Promise<RewrapResult> {
  let rewrapped = 0;
  let alreadyCurrent = 0;
  for (const k of await tx.dataKeys.list()) {
    if (k.kekId === keys.keyId) {
      alreadyCurrent += 1;
      continue;
    }
    const orgId = k.appId === null ? undefined : (await tx.apps.get(k.appId))?.orgId;
    const context = wrappedKeyContext(k, orgId);
    let plain: Buffer;
    try {
      plain = await keys.unwrap(k.wrapped, context);
    } catch (e) {
      if (e instanceof SealError) {
        throw new UserError('invalid_config', `data key ${k.owner} cannot be unwrapped with the master keys given: ${e.message}`, {
          hint: 'run the rotation with the master key file this database was used with; nothing was changed',
        });
      }
      throw e;
    }
    const ok = await tx.dataKeys.rewrap(k.owner, k.wrapped, await keys.wrap(plain, context), keys.keyId, at);
    plain.fill(0);
    if (!ok) throw new Error(`data key ${k.owner} changed during the rotation; nothing was changed, run it again`);
    rewrapped += 1;
  }
  return { rewrapped, alreadyCurrent };
}

/** RotationResult reports a finished master key rotation. */
export interface RotationResult {
  fromKeyId: string;
  toKeyId: string;
  rewrapped: number;
  /** retiredFile keeps the old master key for backups of the database taken before the rotation. */
  retiredFile: string;
}

export interface RotateOptions {
  now: () => string;
  /** auditor records `secrets.master_key_rotate` on the server chain, in the re-wrap's transaction. */
  auditor?: Auditor;
  ctx?: CallContext;
}

/**
 * rotateMasterKey replaces the local master key (the KEK) in `file` with a new random one and re-wraps
 * every data key under it, without decrypting or rewriting any value. Run it with every control plane
 * on the database stopped (see docs/security.md "Rotating the master key"). The order makes each step
 * safe to interrupt and repeat:
 *
 * 1. the new key is written to `<file>.next` (0600; an earlier, interrupted run's is reused);
 * 2. one transaction re-wraps every data key under it (and records the audit entry);
 * 3. the old key is kept as `<file>.retired-<key id>`, then `<file>.next` is renamed over `<file>`.
 *
 * Until step 3 completes, `<file>` still holds the old key and a server started meanwhile loads
 * `<file>.next` too (openLocalKeyProvider), so it reads keys wrapped under either.
 */
export async function rotateMasterKey(store: Store, file: string, opts: RotateOptions): Promise<RotationResult> {
  let current: Buffer;
  try {
    current = await readKeyFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError('invalid_config', `there is no master key file at ${file}`, { hint: 'pass the --master-key-file (or --data-dir) the server runs with' });
    }
    throw e;
  }
  const nextFile = nextKeyFile(file);
  let next: Buffer;
  try {
    next = await readKeyFile(nextFile);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await createKeyFile(nextFile);
    next = await readKeyFile(nextFile);
  }
  const oldKeys = keyProviderFromBytes(current);
  const keys = keyProviderFromBytes(next, current);
  const at = opts.now();
  const result = await store.transaction(async (tx) => {
    const r = await rewrapDataKeys(tx, keys, at);
    if (opts.auditor && opts.ctx) {
      await opts.auditor.record(tx, opts.ctx, {
        orgId: null,
        action: 'secrets.master_key_rotate',
        outcome: 'success',
        details: { from_key_id: oldKeys.keyId, to_key_id: keys.keyId, rewrapped: r.rewrapped },
      });
    }
    return r;
  });
  const retiredFile = `${file}.retired-${oldKeys.keyId}`;
  await link(file, retiredFile).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  await rename(nextFile, file);
  await syncDir(dirname(file));
  return { fromKeyId: oldKeys.keyId, toKeyId: keys.keyId, rewrapped: result.rewrapped, retiredFile };
}

/** syncDir makes a rename in dir durable (POSIX: a rename is on disk once its directory is synced). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

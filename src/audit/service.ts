import type { KeyObject } from 'node:crypto';
import { newId, toTimestamp, type Clock } from '../core/index.ts';
import { StoreConflictError, type Store } from '../store/index.ts';
import { keyIdOf, publicKeyFromPem, publicKeyPem, sealEntry, signCheckpoint, verifyAudit, type AuditKey, type AuditRecord, type Checkpoint, type VerifyProblem, type VerifyResult } from './chain.ts';
import { exportAudit, type ExportFormat } from './export.ts';
import type { AuditEvent, Auditor, CallContext } from './types.ts';

/** SERVER_CHAIN is the chain of events outside any org: signups, failed logins of unknown accounts. */
export const SERVER_CHAIN = '_server';

/** chainOf names the chain an org's events go to. */
export function chainOf(orgId: string | null): string {
  return orgId ?? SERVER_CHAIN;
}

/** AuditLogger is the slice of pino the service reports background failures to. */
export interface AuditLogger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
}

export interface AuditServiceOptions {
  store: Store;
  clock: Clock;
  /** key signs this process's checkpoints (loadOrCreateAuditKey reads it from the data directory). */
  key: AuditKey;
  /** checkpointEvery: a chain is checkpointed at every multiple of this seq; default 100. */
  checkpointEvery?: number;
  /** checkpointIntervalMs: how often start()'s timer checkpoints chains with new entries; default 60 s. */
  checkpointIntervalMs?: number;
  logger?: AuditLogger;
}

export interface StoreVerifyResult extends VerifyResult {
  /** keyIds are the public keys (from audit_keys) checkpoints were checked against. */
  keyIds: string[];
}

/**
 * Key names that must never appear in an entry's details, whatever the value: the values under them are
 * credentials. Details hold names, ids and versions; a bug that passes a secret fails the change loudly
 * instead of writing it into a log that is kept for years and handed to auditors.
 */
const SECRET_KEYS = new Set(['password', 'new_password', 'old_password', 'passwd', 'secret', 'token', 'code', 'otp', 'totp', 'recovery_code', 'recovery_codes', 'private_key', 'api_key', 'value']);
/**
 * SECRET_VALUE matches Ward's bearer secrets anywhere in a string: sessions, invites and API tokens
 * (src/auth/tokens.ts), secrets delivery tokens and host credentials (src/secrets/delivery.ts).
 */
const SECRET_VALUE = /ward_(ses|inv|tok|dlv|hst)_[A-Za-z0-9_-]{20,}/;

/**
 * AuditService is Ward's Auditor: it seals events into per-org hash chains (src/audit/chain.ts), signs
 * checkpoints with this process's Ed25519 key, and verifies and exports the log.
 *
 * Checkpoints are signed at every `checkpointEvery`th entry of a chain (in the same transaction as that
 * entry), every `checkpointIntervalMs` for chains that got entries (start()'s timer), and on close(). The
 * newest entries after the latest checkpoint are the only ones that could be cut off unnoticed, so these
 * bound that window to a minute or 100 entries.
 */
export class AuditService implements Auditor {
  readonly keyId: string;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #key: AuditKey;
  readonly #every: number;
  readonly #intervalMs: number;
  readonly #logger: AuditLogger | undefined;
  /** #dirty holds chains that got entries since their last checkpoint by this process. */
  readonly #dirty = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(opts: AuditServiceOptions) {
    this.#store = opts.store;
    this.#clock = opts.clock;
    this.#key = opts.key;
    this.keyId = opts.key.keyId;
    this.#every = opts.checkpointEvery ?? 100;
    this.#intervalMs = opts.checkpointIntervalMs ?? 60_000;
    this.#logger = opts.logger;
  }

  /** publicKeyPem is the PEM of this process's checkpoint-signing public key. */
  get publicKeyPem(): string {
    return publicKeyPem(this.#key.publicKey);
  }

  /** init records this process's public key in audit_keys, so verifiers find it. Idempotent. */
  async init(): Promise<void> {
    await this.#registerKey(this.#store);
  }

  async #registerKey(store: Store): Promise<void> {
    await store.audit.addKey({ keyId: this.keyId, publicKeyPem: this.publicKeyPem, createdAt: toTimestamp(this.#clock.now()) });
  }

  /**
   * record appends an event to its org's chain within `tx` (joining it, or in a transaction of its own
   * when given the store itself). The head is read under the chain's lock, so concurrent callers queue
   * and each takes the next seq. A failure throws: the caller's change must then fail too. The chain
   * stays locked until `tx` ends, so a transaction that records in two chains must always take them in
   * the same order (or PostgreSQL may detect a deadlock and fail one of two such transactions).
   */
  async record(tx: Store, ctx: CallContext, event: AuditEvent): Promise<AuditRecord> {
    const details = cleanDetails(event.details ?? {});
    const chain = chainOf(event.orgId);
    const rec = await tx.transaction(async (t) => {
      const head = await t.audit.head(chain);
      const at = toTimestamp(this.#clock.now());
      const sealed = sealEntry(
        {
          chain,
          id: newId('audit'),
          at,
          org_id: event.orgId,
          actor_type: ctx.actor.type,
          actor_id: ctx.actor.id,
          actor_label: ctx.actor.label,
          action: event.action,
          target: event.target ?? null,
          outcome: event.outcome,
          source_ip: ctx.sourceIp,
          request_id: ctx.requestId,
          details,
        },
        head,
      );
      await t.audit.append(sealed);
      if (sealed.seq % this.#every === 0) {
        // In the entry's transaction: the checkpoint exists exactly when the entry does.
        await this.#registerKey(t);
        await addIgnoringDuplicate(t, signCheckpoint(this.#key, sealed, at));
      }
      return sealed;
    });
    this.#dirty.add(chain);
    return rec;
  }

  /**
   * checkpoint signs the current head of each chain (default: those with entries since the last
   * checkpoint) and returns the new checkpoints. A head already checkpointed (by this process or another
   * replica) is skipped.
   */
  async checkpoint(chains?: Iterable<string>): Promise<Checkpoint[]> {
    const todo = [...(chains ?? this.#dirty)];
    if (chains === undefined) this.#dirty.clear();
    const made: Checkpoint[] = [];
    if (todo.length === 0) return made;
    try {
      await this.#registerKey(this.#store);
      for (const chain of todo) {
        const head = await this.#store.audit.head(chain);
        if (!head) continue;
        const c = signCheckpoint(this.#key, head, toTimestamp(this.#clock.now()));
        if (await addIgnoringDuplicate(this.#store, c)) made.push(c);
      }
    } catch (e) {
      // Try again next time; the entries are safe in the log, only their seal is late.
      for (const chain of todo) this.#dirty.add(chain);
      throw e;
    }
    return made;
  }

  /**
   * start begins the checkpoint timer (unref'd: it never keeps the process alive) and, in the
   * background, checkpoints every chain whose newest entries a previous run left unsigned.
   */
  start(): void {
    if (this.#timer || this.#closed) return;
    this.#serial(async () => this.checkpoint(await this.#store.audit.chains()));
    this.#timer = setInterval(() => this.#serial(() => this.checkpoint()), this.#intervalMs);
    this.#timer.unref();
  }

  // #serial runs background checkpoints one at a time and logs their failures.
  #serial(fn: () => Promise<unknown>): void {
    this.#running = this.#running
      .then(fn)
      .catch((e: unknown) => this.#logger?.warn({ err: (e as Error)?.message ?? String(e) }, 'audit checkpoint failed; will retry'));
  }

  /** close stops the timer and signs a last checkpoint of every chain written since the previous one. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
    await this.checkpoint();
  }

  /** verify checks the log in `store` (one org's chain, or all) against every key in audit_keys. */
  verify(store: Store, opts: { orgId?: string | undefined } = {}): Promise<StoreVerifyResult> {
    return verifyStore(store, opts);
  }

  /** export yields an export of the log in `store` line by line; see src/audit/export.ts for the format. */
  export(store: Store, opts: { orgId?: string | undefined; since?: string | undefined; format: ExportFormat }): AsyncGenerator<string> {
    return exportAudit(store, { ...opts, now: toTimestamp(this.#clock.now()) });
  }
}

async function addIgnoringDuplicate(store: Store, c: Checkpoint): Promise<boolean> {
  try {
    await store.audit.addCheckpoint(c);
    return true;
  } catch (e) {
    if (e instanceof StoreConflictError) return false;
    throw e;
  }
}

/**
 * verifyStore verifies the audit log held in a store: one org's chain, or every chain. Checkpoints are
 * checked against every public key in audit_keys (each control-plane replica signs with its own).
 */
export async function verifyStore(store: Store, opts: { orgId?: string | undefined } = {}): Promise<StoreVerifyResult> {
  const chains = opts.orgId !== undefined ? [opts.orgId] : await store.audit.chains();
  const entries: AuditRecord[] = [];
  const checkpoints: Checkpoint[] = [];
  for (const chain of chains) {
    entries.push(...(await store.audit.entries(chain)));
    checkpoints.push(...(await store.audit.checkpoints(chain)));
  }
  const keys: KeyObject[] = [];
  const keyProblems: VerifyProblem[] = [];
  for (const k of await store.audit.keys()) {
    try {
      const key = publicKeyFromPem(k.publicKeyPem);
      if (keyIdOf(key) !== k.keyId) throw new Error('id mismatch');
      keys.push(key);
    } catch {
      keyProblems.push({ chain: '', seq: 0, reason: `audit key ${k.keyId} is not a valid public key with that id` });
    }
  }
  const r = verifyAudit(entries, checkpoints, keys);
  const problems = [...keyProblems, ...r.problems];
  return { ...r, ok: problems.length === 0, problems, keyIds: keys.map(keyIdOf) };
}

/**
 * cleanDetails makes details plain JSON (so they hash the same after a trip through the database: a Date
 * becomes its string) and refuses anything that looks like a credential.
 */
function cleanDetails(details: Record<string, unknown>): Record<string, unknown> {
  const json = JSON.stringify(details);
  if (SECRET_VALUE.test(json)) throw new Error('audit details must not contain a secret (a ward_ses_/ward_inv_/ward_tok_/ward_dlv_/ward_hst_ value)');
  const plain = JSON.parse(json) as Record<string, unknown>;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (SECRET_KEYS.has(k.toLowerCase())) throw new Error(`audit details must not hold a field named "${k}": record names and ids, never credentials`);
        walk(x);
      }
    }
  };
  walk(plain);
  return plain;
}

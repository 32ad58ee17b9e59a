import { toTimestamp, UserError, type Clock, type Host } from '../core/index.ts';
import type { Principal } from '../auth/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import type { SecretChange, SecretValueRecord, Store } from '../store/index.ts';
import {
  bearerHash,
  DELIVERY_TOKEN_TTL_MS,
  DotenvError,
  isDeliveryToken,
  isHostCredential,
  MAX_SECRETS_PER_APP,
  MAX_SECRETS_TOTAL_BYTES,
  newDeliveryToken,
  newHostCredential,
  parseDotenv,
  SecretIntegrityError,
  secretNameProblem,
  secretValueProblem,
  type AppKeys,
  type InstanceSecrets,
  type SecretsFetcher,
} from '../secrets/index.ts';
import { contextOf } from './audited.ts';
import type { AppService, AppView } from './apps.ts';

/** SecretView is what anyone may see of a secret: never its value. */
export interface SecretView {
  name: string;
  /** digest is the keyed digest (HMAC-SHA256 under the app's own key, 16 hex digits). */
  digest: string;
  /** version is the secrets version that last set this name. */
  version: number;
  createdAt: string;
}

export interface SecretsListing {
  app: AppView;
  /** version is the app's newest secrets version (0: never had any); the next deploy pins it. */
  version: number;
  secrets: SecretView[];
}

/**
 * RolloutSummary says what happened to the app's instances after a change: `started` (a release carrying
 * the new version is replacing them, behind their health checks), `staged` (--stage: the next deploy
 * applies it), `none` (nothing runs, or nothing changed), `deferred` (not rolled now: a deploy is in
 * progress, or this server has no deploy machinery; the next deploy applies it).
 */
export interface RolloutSummary {
  status: 'started' | 'staged' | 'none' | 'deferred';
  /** release is the release made to carry the new version, when one was. */
  release?: number;
  /** instances counts the instances being replaced. */
  instances: number;
  message: string;
}

/**
 * SecretsRollout moves an app's running instances to a new secrets version, one at a time behind their
 * health checks: the Deploys machinery implements it. It is called after the change has committed; a
 * failure there leaves the change in place (the next deploy applies it) and is reported, not thrown away.
 */
export interface SecretsRollout {
  /** roll moves the app onto secretsVersion; userId is the person who made the change (a token's creator). */
  roll(app: AppView, secretsVersion: number, userId: string, ctx: CallContext): Promise<RolloutSummary>;
}

export interface SecretChangeResult {
  app: AppView;
  /** version is the new secrets version, or the unchanged current one when nothing changed. */
  version: number;
  /** changed names the secrets this change set or unset; unchanged those given with their current value. */
  changed: string[];
  unchanged: string[];
  staged: boolean;
  rollout: RolloutSummary;
}

export interface SecretServiceOptions {
  store: Store;
  clock: Clock;
  apps: AppService;
  audit: Auditor;
  keys: AppKeys;
  /** rollout is the Deploys machinery; without it a change waits for the next deploy. */
  rollout?: SecretsRollout;
}

/** ChangeOptions: `stage` stores the change without rolling the app's instances. */
export interface ChangeOptions {
  stage?: boolean;
}

/**
 * SecretService is the write-only secrets API: set, unset, import, list. No method returns a value, to
 * anyone, whatever their role; values leave the control plane only through SecretDeliveryService, to the
 * agent of a host that runs the app. Every change is one transaction: a new version, its ciphertexts and
 * its audit entry (names and version, never values) commit together or not at all.
 */
export class SecretService {
  readonly #o: SecretServiceOptions;

  constructor(options: SecretServiceOptions) {
    this.#o = options;
  }

  /** setRollout plugs in the Deploys machinery once it exists (the server wires it after both are built). */
  setRollout(rollout: SecretsRollout | undefined): void {
    this.#o.rollout = rollout;
  }

  /** list returns the app's current secrets: name, digest, version, created_at. */
  async list(p: Principal, appRef: string, ctx: CallContext = contextOf(p)): Promise<SecretsListing> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:read', ctx);
    const version = await this.#o.store.secrets.latestVersion(app.id);
    const rows = version === 0 ? [] : await this.#o.store.secrets.at(app.id, version);
    return { app, version, secrets: rows.map((r) => ({ name: r.name, digest: r.digest!, version: r.version, createdAt: r.createdAt })) };
  }

  /** set stores values for names (a new version), then rolls the app's instances unless opts.stage. */
  async set(p: Principal, appRef: string, values: unknown, opts: ChangeOptions = {}, ctx: CallContext = contextOf(p)): Promise<SecretChangeResult> {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) throw new UserError('bad_request', 'values must be an object of NAME: value');
    const entries = Object.entries(values as Record<string, unknown>);
    if (entries.length === 0) throw new UserError('bad_request', 'no secrets given', { hint: 'ward secrets set NAME=VALUE …' });
    const changes = entries.map(([name, value]) => {
      checkName(name);
      if (typeof value !== 'string') throw new UserError('invalid_secret', `the value of ${name} must be a string`);
      checkValue(name, value);
      return { name, value };
    });
    const app = await this.#o.apps.resolve(p, appRef, 'secret:write', ctx);
    return this.#change(p, app, 'set', changes, opts, ctx);
  }

  /** unset removes names (a new version); every name must exist, or nothing changes. */
  async unset(p: Principal, appRef: string, names: unknown, opts: ChangeOptions = {}, ctx: CallContext = contextOf(p)): Promise<SecretChangeResult> {
    if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) {
      throw new UserError('bad_request', 'names must be a non-empty array of secret names', { hint: 'ward secrets unset NAME …' });
    }
    for (const n of names as string[]) checkName(n);
    const app = await this.#o.apps.resolve(p, appRef, 'secret:write', ctx);
    return this.#change(p, app, 'unset', [...new Set(names as string[])].map((name) => ({ name, value: null })), opts, ctx);
  }

  /**
   * import sets every variable of a .env text (see parseDotenv) as one change. A parse error names the
   * line, never its text.
   */
  async import(p: Principal, appRef: string, dotenv: unknown, opts: ChangeOptions = {}, ctx: CallContext = contextOf(p)): Promise<SecretChangeResult> {
    if (typeof dotenv !== 'string') throw new UserError('bad_request', 'dotenv must be the text of a .env file');
    let parsed: Map<string, string>;
    try {
      parsed = parseDotenv(dotenv);
    } catch (e) {
      if (e instanceof DotenvError) throw new UserError('invalid_secret', `the .env text cannot be read: ${e.message}`, { hint: 'write one KEY=VALUE per line; quote values with spaces or #' });
      throw e;
    }
    if (parsed.size === 0) throw new UserError('bad_request', 'the .env text sets no variables');
    const changes = [...parsed].map(([name, value]) => {
      checkName(name);
      checkValue(name, value);
      return { name, value };
    });
    const app = await this.#o.apps.resolve(p, appRef, 'secret:write', ctx);
    return this.#change(p, app, 'import', changes, opts, ctx);
  }

  async #change(p: Principal, app: AppView, change: SecretChange, changes: Array<{ name: string; value: string | null }>, opts: ChangeOptions, ctx: CallContext): Promise<SecretChangeResult> {
    const staged = opts.stage === true;
    const now = toTimestamp(this.#o.clock.now());
    const result = await this.#o.store.transaction(async (tx) => {
      const latest = await tx.secrets.latestVersion(app.id);
      const current = new Map((latest === 0 ? [] : await tx.secrets.at(app.id, latest)).map((r) => [r.name, r] as const));
      const missing = changes.filter((c) => c.value === null && !current.has(c.name)).map((c) => c.name);
      if (missing.length) {
        throw new UserError('not_found', `app ${app.name} has no secret named ${missing.join(', ')}`, { hint: `ward secrets list -a ${app.name}` });
      }
      const version = latest + 1;
      const key = changes.some((c) => c.value !== null) ? await this.#o.keys.getOrCreate(tx, app) : undefined;
      const rows: SecretValueRecord[] = [];
      const changed: string[] = [];
      const unchanged: string[] = [];
      const next = new Map(current);
      for (const c of changes) {
        if (c.value === null) {
          rows.push({ appId: app.id, name: c.name, version, sealed: null, digest: null, createdAt: now });
          next.delete(c.name);
          changed.push(c.name);
          continue;
        }
        const digest = key!.digest(c.value);
        if (current.get(c.name)?.digest === digest) {
          unchanged.push(c.name);
          continue;
        }
        const row: SecretValueRecord = { appId: app.id, name: c.name, version, sealed: key!.seal({ orgId: app.orgId, appId: app.id, name: c.name, version }, c.value), digest, createdAt: now };
        rows.push(row);
        next.set(c.name, row);
        changed.push(c.name);
      }
      if (changed.length === 0) return { version: latest, changed, unchanged };
      if (next.size > MAX_SECRETS_PER_APP) {
        throw new UserError('invalid_secret', `app ${app.name} would have ${next.size} secrets; at most ${MAX_SECRETS_PER_APP} are allowed`);
      }
      const total = [...next.values()].reduce((n, r) => n + Buffer.byteLength(r.name) + sealedBytes(r.sealed), 0);
      if (total > MAX_SECRETS_TOTAL_BYTES) {
        throw new UserError('invalid_secret', `app ${app.name}'s secrets would take ${total} bytes; at most ${MAX_SECRETS_TOTAL_BYTES} are allowed`, {
          hint: 'mount large material (certificates bundles, keystores) from a volume instead',
        });
      }
      await tx.secrets.addVersion({ appId: app.id, version, change, staged, names: changed, createdAt: now, createdBy: p.userId });
      await tx.secrets.putValues(rows);
      await this.#o.audit.record(tx, ctx, {
        orgId: app.orgId,
        action: `secret.${change}`,
        target: app.id,
        outcome: 'success',
        details: { app: app.name, names: changed, version, staged },
      });
      return { version, changed, unchanged };
    });
    let rollout: RolloutSummary;
    if (result.changed.length === 0) rollout = { status: 'none', instances: 0, message: 'nothing changed' };
    else if (staged) rollout = { status: 'staged', instances: 0, message: `stored as version ${result.version}; the next deploy applies it` };
    else if (!this.#o.rollout) rollout = { status: 'deferred', instances: 0, message: `stored as version ${result.version}; this server has no deploy machinery, so the next deploy applies it` };
    else rollout = await this.#o.rollout.roll(app, result.version, p.userId, ctx);
    return { app, ...result, staged, rollout };
  }
}

function checkName(name: string): void {
  const problem = secretNameProblem(name);
  // A valid name is safe to echo; an invalid one may be a value pasted where a name goes, so it is
  // described (its length), never quoted: error messages are printed, logged and kept in CI output.
  if (problem) throw new UserError('invalid_secret', `invalid secret name (${name.length} characters): ${problem}`, { hint: 'names look like DATABASE_URL' });
}

function checkValue(name: string, value: string): void {
  const problem = secretValueProblem(value);
  if (problem) throw new UserError('invalid_secret', `the value of ${name} is invalid: ${problem}`);
}

/** sealedBytes is the plaintext size of a sealed value: GCM ciphertext is as long as its plaintext. */
function sealedBytes(sealed: string | null): number {
  if (sealed === null) return 0;
  const ct = sealed.split('.')[2] ?? '';
  return Math.floor((ct.length * 3) / 4);
}

/** DeliveryLogger is the slice of the server's logger delivery reports to (refusals, integrity failures). */
export interface DeliveryLogger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

export interface SecretDeliveryOptions {
  store: Store;
  clock: Clock;
  audit: Auditor;
  keys: AppKeys;
  logger?: DeliveryLogger;
  /** ttlMs is how long a delivery token is valid; default DELIVERY_TOKEN_TTL_MS. */
  ttlMs?: number;
}

/** SWEEP_EVERY_MS is how often mint removes tokens that expired (more than this long ago). */
const SWEEP_EVERY_MS = 60 * 60 * 1000;

/** DeliveryTicket is a minted delivery token with what it is good for. */
export interface DeliveryTicket {
  token: string;
  instanceId: string;
  hostId: string;
  secretsVersion: number;
  expiresAt: string;
}

/** hostContext is the audit context of an agent acting for its host. */
export function hostContext(host: Host, sourceIp: string | null = null, requestId: string | null = null): CallContext {
  return { actor: { type: 'system', id: host.id, label: `agent on host ${host.name}` }, sourceIp, requestId };
}

/**
 * SecretDeliveryService is the only way a secret value leaves the control plane: to the agent of the
 * host an instance is placed on, for that instance, once per start.
 *
 * - `mint(instance)` (control plane, when it hands an instance to its host to start) makes a token bound
 *   to the placement: instance, host, app and the secrets version the instance's release pins.
 * - `exchange(host, token)` (the agent) spends the token and returns exactly those values, if the token
 *   was minted for this host, has not expired or been used, and the instance is still placed on this
 *   host and meant to run. A host with no instance of the app gets nothing, with its own credential or
 *   with a token stolen from another host (which it then also burns: the rightful agent's refusal
 *   reveals the theft).
 *
 * Every exchange, granted or refused, is in the audit log (`secret.deliver`: instance, host, version
 * and names; never values).
 */
export class SecretDeliveryService {
  readonly #o: SecretDeliveryOptions;
  #lastSweep = 0;

  constructor(options: SecretDeliveryOptions) {
    this.#o = options;
  }

  #now(): string {
    return toTimestamp(this.#o.clock.now());
  }

  /**
   * issueHostCredential makes (or replaces) the credential a host's agent authenticates to the API with
   * and returns it; only its hash is kept. It is shown once: the agent keeps it in memory or in a 0600
   * file of its own.
   */
  async issueHostCredential(hostId: string): Promise<string> {
    const host = await this.#o.store.hosts.get(hostId);
    if (!host) throw new UserError('not_found', `host ${hostId} not found`);
    const credential = newHostCredential();
    await this.#o.store.hostCredentials.put({ hostId, tokenHash: bearerHash(credential), createdAt: this.#now() });
    return credential;
  }

  /** authenticateHost returns the host a `ward_hst_…` credential belongs to, or throws `unauthenticated`. */
  async authenticateHost(credential: string | undefined): Promise<Host> {
    const refused = () => new UserError('unauthenticated', 'this request needs a valid host credential (ward_hst_…)');
    if (!isHostCredential(credential)) throw refused();
    const cred = await this.#o.store.hostCredentials.findByTokenHash(bearerHash(credential));
    const host = cred && (await this.#o.store.hosts.get(cred.hostId));
    if (!host || host.status === 'down') throw refused();
    return host;
  }

  /**
   * mint makes a delivery token for an instance placed on hostId, for the secrets version its release
   * pins. Only the control plane calls it, when it hands the instance to its host's agent to start
   * (in-process on a single node; over the agent link on others), never a route a person can reach. An
   * instance that is not placed on hostId, or not meant to run, gets no token.
   */
  async mint(instanceId: string, hostId: string): Promise<DeliveryTicket> {
    const instance = await this.#o.store.instances.get(instanceId);
    if (!instance || instance.hostId !== hostId || instance.desiredState !== 'running') {
      throw new UserError('delivery_refused', `instance ${instanceId} is not placed on host ${hostId} to run`);
    }
    const release = await this.#o.store.releases.get(instance.releaseId);
    const secretsVersion = release?.secretsVersion ?? 0;
    const token = newDeliveryToken();
    const now = this.#o.clock.now().getTime();
    // Spent and expired tokens are useless; sweep them now and then rather than on a timer of their own.
    if (now - this.#lastSweep > SWEEP_EVERY_MS) {
      this.#lastSweep = now;
      await this.#o.store.secretDeliveries.deleteExpired(toTimestamp(now - SWEEP_EVERY_MS));
    }
    const expiresAt = toTimestamp(now + (this.#o.ttlMs ?? DELIVERY_TOKEN_TTL_MS));
    await this.#o.store.secretDeliveries.create({
      tokenHash: bearerHash(token),
      appId: instance.appId,
      instanceId,
      hostId: instance.hostId,
      secretsVersion,
      createdAt: toTimestamp(now),
      expiresAt,
      usedAt: null,
    });
    return { token, instanceId, hostId: instance.hostId, secretsVersion, expiresAt };
  }

  /** exchange trades a delivery token for its instance's secrets; see the class comment for the rules. */
  async exchange(host: Host, token: unknown, ctx: CallContext = hostContext(host)): Promise<InstanceSecrets> {
    const { store } = this.#o;
    const hash = isDeliveryToken(token) ? bearerHash(token) : undefined;
    const record = hash ? await store.secretDeliveries.find(hash) : undefined;
    if (!record) return this.#refuse(ctx, host, undefined, 'unknown_token', 'the delivery token is not one this control plane minted');
    const app = await store.apps.get(record.appId);
    if (!app) return this.#refuse(ctx, host, undefined, 'unknown_token', 'the delivery token is for an app that no longer exists');
    const now = this.#now();
    if (record.hostId !== host.id) {
      // Burn it: a token presented by the wrong host has leaked, and must not work for anyone after this.
      await store.secretDeliveries.take(record.tokenHash, now);
      return this.#refuse(ctx, host, { orgId: app.orgId, appId: app.id, instanceId: record.instanceId }, 'wrong_host', 'the delivery token was minted for another host');
    }
    const where = { orgId: app.orgId, appId: app.id, instanceId: record.instanceId };
    type Outcome = { refused: 'spent' | 'expired' | 'not_placed' } | { env: Record<string, string> };
    const outcome = await store.transaction<Outcome>(async (tx) => {
      const taken = await tx.secretDeliveries.take(record.tokenHash, now);
      if (!taken) return { refused: (await tx.secretDeliveries.find(record.tokenHash))?.usedAt ? 'spent' : 'expired' } as const;
      const instance = await tx.instances.get(record.instanceId);
      if (!instance || instance.hostId !== host.id || instance.appId !== app.id || instance.desiredState !== 'running') return { refused: 'not_placed' } as const;
      const rows = record.secretsVersion === 0 ? [] : await tx.secrets.at(app.id, record.secretsVersion);
      const env: Record<string, string> = {};
      if (rows.length) {
        const key = await this.#o.keys.get(tx, app);
        if (!key) throw new SecretIntegrityError(`app ${app.id} has stored secrets but no data key`, { appId: app.id });
        for (const r of rows) env[r.name] = key.open({ orgId: app.orgId, appId: app.id, name: r.name, version: r.version }, r.sealed!);
      }
      await this.#o.audit.record(tx, ctx, {
        orgId: app.orgId,
        action: 'secret.deliver',
        target: record.instanceId,
        outcome: 'success',
        details: { app: app.name, instance_id: record.instanceId, host_id: host.id, host: host.name, version: record.secretsVersion, names: rows.map((r) => r.name) },
      });
      return { env } as const;
    }).catch(async (integrity: unknown) => {
      if (!(integrity instanceof SecretIntegrityError)) throw integrity;
      // Loudly: an error log line, an audit entry and a 500 to the agent, never a partial environment.
      this.#o.logger?.error(
        { app_id: app.id, instance_id: record.instanceId, host_id: host.id, secret_name: integrity.secretName ?? null, secret_version: integrity.version ?? null, reason: integrity.message },
        'SECRET INTEGRITY FAILURE: a stored secret does not decrypt; the database was altered or rows were moved between apps',
      );
      await this.#o.audit.record(store, ctx, {
        orgId: app.orgId,
        action: 'secret.deliver',
        target: record.instanceId,
        outcome: 'failure',
        details: { app: app.name, instance_id: record.instanceId, host_id: host.id, version: record.secretsVersion, reason: 'integrity', name: integrity.secretName ?? null },
      });
      throw new UserError('secrets_unreadable', integrity.message, { hint: 'the database holds altered secret rows; see docs/errors.md#secrets_unreadable' });
    });
    if ('refused' in outcome) {
      const why = { spent: 'the delivery token was used already', expired: 'the delivery token has expired', not_placed: 'the instance is not placed on this host to run' }[outcome.refused];
      return this.#refuse(ctx, host, where, outcome.refused, why);
    }
    this.#o.logger?.info({ host_id: host.id, app_id: app.id, instance_id: record.instanceId, secrets_version: record.secretsVersion, count: Object.keys(outcome.env).length }, 'secrets delivered');
    return { instanceId: record.instanceId, appId: app.id, version: record.secretsVersion, env: outcome.env };
  }

  async #refuse(ctx: CallContext, host: Host, where: { orgId: string; appId: string; instanceId: string } | undefined, reason: string, message: string): Promise<never> {
    this.#o.logger?.warn({ host_id: host.id, app_id: where?.appId ?? null, instance_id: where?.instanceId ?? null, reason }, 'secrets delivery refused');
    await this.#o.audit.record(this.#o.store, ctx, {
      orgId: where?.orgId ?? null,
      action: 'secret.deliver',
      target: where?.instanceId ?? null,
      outcome: 'denied',
      details: { host_id: host.id, host: host.name, reason, ...(where ? { instance_id: where.instanceId } : {}) },
    });
    throw new UserError('delivery_refused', `secrets delivery refused: ${message}`, {
      hint: 'an agent needs a fresh token minted for this host and instance; a token it did not use itself has leaked',
    });
  }

  /**
   * localFetcher is the SecretsFetcher of an agent running in this process (single-node `ward server`):
   * it trades tokens as the host hostId() names (the agent's own, known once it has registered), with
   * every check an agent on another host gets over the API.
   */
  localFetcher(hostId: () => string): SecretsFetcher {
    return {
      fetch: async (token) => {
        const host = await this.#o.store.hosts.get(hostId());
        if (!host || host.status === 'down') throw new UserError('delivery_refused', 'secrets delivery refused: this agent\'s host is not registered');
        return this.exchange(host, token);
      },
    };
  }
}

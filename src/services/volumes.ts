/**
 * VolumeService: an app's encrypted volumes (docs/volumes.md) as the API sees them: create, list,
 * show, destroy. VolumeKeyService: the control plane's side of a volume's key, handed only to the
 * volume's host for an instance being started there (or a backup), and audited.
 *
 * Keys: each volume has its own random 256-bit key, stored only sealed (AES-256-GCM) under the app's data
 * key, which the KEK wraps (src/secrets: AppKeys): the associated data binds org, app and the volume's
 * id, so a sealed key copied to another volume's, app's or org's row does not open there; a master key
 * rotation re-wraps the app's data key and so keeps every volume openable. destroy deletes the sealed key in the transaction that
 * records `volume.destroy`, then has the host remove the loop file: once the row is gone, nothing Ward
 * holds can decrypt the volume, wherever copies of the file went.
 */
import { randomBytes } from 'node:crypto';
import { formatSize, isId, nameProblem, newId, parseSize, toTimestamp, UserError, type Clock, type Host } from '../core/index.ts';
import type { AppConfig } from '../config/index.ts';
import type { Principal } from '../auth/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { SecretIntegrityError, type AppKeys, type SecretRef } from '../secrets/index.ts';
import { StoreConflictError, type Store, type VolumeRecord } from '../store/index.ts';
import type { Assignment, EncryptionKind, VolumeGrant, VolumeMountGrant, VolumeRef, VolumeSource } from '../agent/index.ts';
import { contextOf } from './audited.ts';
import type { AppService, AppView } from './apps.ts';

/** MIN_VOLUME_BYTES is the smallest volume: 64 MiB (ext4's journal and metadata need room of their own). */
export const MIN_VOLUME_BYTES = 64 * 1024 ** 2;
/** MAX_VOLUME_BYTES is the largest: 16 TiB (one loop file on one host's disk; larger is a mistake). */
export const MAX_VOLUME_BYTES = 16 * 1024 ** 4;
/** MAX_VOLUMES_PER_APP bounds what a typo in a script can create. */
export const MAX_VOLUMES_PER_APP = 64;

/** ENCRYPTION_DESCRIPTIONS is what `ward volumes show` says about each backend. */
export const ENCRYPTION_DESCRIPTIONS: Record<EncryptionKind, string> = {
  fscrypt: 'ext4 with kernel fscrypt (v2 policy: AES-256-XTS contents, AES-256-CTS names) on a loop file',
  luks2: 'LUKS2 (dm-crypt, aes-xts-plain64, 512-bit key) on a loop file, ext4 inside',
};

/** SEALED_WITH_APP_DATA_KEY is VolumeRecord.sealedWith for a key sealed under the app's data key. */
export const SEALED_WITH_APP_DATA_KEY = 'app-data-key';

/**
 * volumeKeyRef is where a volume's key is sealed among the app's values: the name `volume/<id>` can
 * never be a secret's (secret names are environment variable names), so the two never mix.
 */
export const volumeKeyRef = (orgId: string, appId: string, volumeId: string): SecretRef => ({ orgId, appId, name: `volume/${volumeId}`, version: 0 });

/** sealVolumeKey seals a volume's 32-byte key under its app's data key (in the caller's transaction). */
export async function sealVolumeKey(appKeys: AppKeys, tx: Store, v: { orgId: string; appId: string; id: string }, key: Buffer): Promise<string> {
  const dataKey = await appKeys.getOrCreate(tx, { id: v.appId, orgId: v.orgId });
  return dataKey.seal(volumeKeyRef(v.orgId, v.appId, v.id), key.toString('base64'));
}

/** openVolumeKey opens a stored volume key; altered, moved or foreign rows throw SecretIntegrityError. */
export async function openVolumeKey(appKeys: AppKeys, store: Store, v: VolumeRecord): Promise<Buffer> {
  if (v.sealedWith !== SEALED_WITH_APP_DATA_KEY) throw new SecretIntegrityError(`volume ${v.id} has a key sealed with "${v.sealedWith}", which this Ward cannot open`, { appId: v.appId });
  const dataKey = await appKeys.get(store, { id: v.appId, orgId: v.orgId });
  if (!dataKey) throw new SecretIntegrityError(`app ${v.appId} has a volume but no data key`, { appId: v.appId });
  const key = Buffer.from(dataKey.open(volumeKeyRef(v.orgId, v.appId, v.id), v.wrappedKey), 'base64');
  if (key.length !== 32) throw new SecretIntegrityError(`the key of volume ${v.id} is not 32 bytes`, { appId: v.appId });
  return key;
}

/** VolumeHostFiles is the host side the control plane reaches in-process (the agent's VolumeManager). */
export interface VolumeHostFiles {
  /** hostId is the host this process's agent runs as (undefined before it registered). */
  hostId(): string | undefined;
  /** encryption is the backend that host formats new volumes with. */
  encryption(): EncryptionKind;
  /** remove deletes a destroyed volume's loop file. */
  remove(volumeId: string): Promise<void>;
  /** users lists who holds the volume open now (instances, backups). */
  users(volumeId: string): string[];
}

export interface VolumeServiceOptions {
  store: Store;
  clock: Clock;
  apps: AppService;
  audit: Auditor;
  /** keys are the apps' data keys (the KEK wraps them); a volume's key is sealed under its app's. */
  keys: AppKeys;
  /** files is this process's agent; without it, destroy leaves the loop file for its host to remove. */
  files?: () => VolumeHostFiles | undefined;
  logger?: { warn(o: object, msg: string): void };
}

/** VolumeView is a volume as the API shows it. */
export interface VolumeView {
  id: string;
  name: string;
  app: string;
  region: string;
  host: string;
  size_bytes: number;
  size: string;
  /** encryption is the backend the volume was formatted with, or what its host will use ("pending"). */
  encryption: EncryptionKind | null;
  encryption_description: string;
  formatted_at: string | null;
  /** attached lists the app's instances that mount it (wanting to run, or not yet stopped). */
  attached: string[];
  created_at: string;
}

/** DestroyedVolume is what destroy did: the key always, the file when the host could be reached. */
export interface DestroyedVolume {
  volume: VolumeView;
  key_destroyed: true;
  file_removed: boolean;
}

/** mountsOf reads the `[[mounts]]` of a release's stored config. */
function mountsOf(config: string): AppConfig['mounts'] {
  try {
    return (JSON.parse(config) as AppConfig).mounts ?? [];
  } catch {
    return [];
  }
}

/** parseVolumeSize reads `--size`: "1gb", "512MB" or a byte count; bounded and MiB-aligned. */
export function parseVolumeSize(size: unknown): number {
  let bytes: number;
  if (typeof size === 'number') bytes = size;
  else if (typeof size === 'string' && /^\d+$/.test(size.trim())) bytes = Number(size.trim());
  else if (typeof size === 'string') {
    try {
      bytes = parseSize(size);
    } catch {
      throw new UserError('bad_request', `invalid volume size ${JSON.stringify(size)}`, { hint: 'give a number and a unit, like --size 1gb or --size 512mb' });
    }
  } else throw new UserError('bad_request', 'a volume size is required', { hint: 'ward volumes create NAME --size 1gb' });
  if (!Number.isSafeInteger(bytes) || bytes < MIN_VOLUME_BYTES || bytes > MAX_VOLUME_BYTES) {
    throw new UserError('bad_request', `a volume's size must be between ${formatSize(MIN_VOLUME_BYTES)} and ${formatSize(MAX_VOLUME_BYTES)}, not ${Number.isFinite(bytes) ? formatSize(bytes) : String(size)}`, {
      hint: 'use --size 1gb, for example',
    });
  }
  if (bytes % (1024 ** 2) !== 0) throw new UserError('bad_request', `a volume's size must be a whole number of MiB, not ${bytes} bytes`, { hint: 'use --size 1gb, for example' });
  return bytes;
}

export class VolumeService {
  readonly #o: VolumeServiceOptions;

  constructor(o: VolumeServiceOptions) {
    this.#o = o;
  }

  #now(): string {
    return toTimestamp(this.#o.clock.now());
  }

  /** #attached lists the app's active instances whose release mounts the volume. */
  async #attached(store: Store, v: VolumeRecord): Promise<string[]> {
    const out: string[] = [];
    const releases = new Map<string, boolean>();
    for (const i of await store.instances.listForApp(v.appId, { active: true })) {
      let mounts = releases.get(i.releaseId);
      if (mounts === undefined) {
        const r = await store.releases.get(i.releaseId);
        mounts = !!r && mountsOf(r.config).some((m) => m.source === v.name);
        releases.set(i.releaseId, mounts);
      }
      if (mounts) out.push(i.id);
    }
    return out;
  }

  async #view(app: AppView, v: VolumeRecord): Promise<VolumeView> {
    const host = await this.#o.store.hosts.get(v.hostId);
    const files = this.#o.files?.();
    const expected = v.encryption === null && files && files.hostId() === v.hostId ? files.encryption() : undefined;
    const kind = (v.encryption as EncryptionKind | null) ?? null;
    return {
      id: v.id,
      name: v.name,
      app: app.name,
      region: v.region,
      host: host?.name ?? v.hostId,
      size_bytes: v.sizeBytes,
      size: formatSize(v.sizeBytes),
      encryption: kind,
      encryption_description: kind
        ? ENCRYPTION_DESCRIPTIONS[kind] ?? kind
        : `not formatted yet (on first mount)${expected ? `; its host will use ${ENCRYPTION_DESCRIPTIONS[expected]}` : ''}`,
      formatted_at: v.formattedAt,
      attached: await this.#attached(this.#o.store, v),
      created_at: v.createdAt,
    };
  }

  async #find(app: AppView, name: string): Promise<VolumeRecord> {
    const v = isId(name, 'volume') ? await this.#o.store.volumes.get(name) : await this.#o.store.volumes.findByName(app.id, name);
    if (!v || v.appId !== app.id) throw new UserError('not_found', `app "${app.name}" has no volume "${name}"`, { hint: `ward volumes list -a ${app.name}` });
    return v;
  }

  /** #host picks the volume's host: a ready one (of the region, when given) holding the fewest volumes. */
  async #host(region: string | undefined): Promise<Host> {
    const hosts = (await this.#o.store.hosts.list()).filter((h) => h.status === 'ready' && (region === undefined || h.region === region));
    if (hosts.length === 0) {
      throw new UserError('unavailable', `no host is ready to hold a volume${region === undefined ? '' : ` in region "${region}"`}`, {
        hint: region === undefined ? 'start the agent role: ward server --roles control,agent' : 'pick a region a host runs in, or start an agent there',
      });
    }
    const load = new Map<string, number>();
    for (const h of hosts) load.set(h.id, (await this.#o.store.volumes.listForHost(h.id)).length);
    return hosts.sort((a, b) => load.get(a.id)! - load.get(b.id)! || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0]!;
  }

  /** create records a volume with its own random key, wrapped by the KEK (app:deploy); `volume.create` is audited with it. */
  async create(p: Principal, appRef: string, input: { name?: unknown; size?: unknown; region?: unknown }, ctx: CallContext = contextOf(p)): Promise<VolumeView> {
    const { name, size, region } = input;
    if (typeof name !== 'string') throw new UserError('bad_request', 'a volume name is required', { hint: 'ward volumes create NAME --size 1gb' });
    const problem = nameProblem(name);
    if (problem) throw new UserError('invalid_name', `invalid volume name "${name}": ${problem}`, { hint: 'use a name like data or pg-data, as [[mounts]] source names it' });
    const sizeBytes = parseVolumeSize(size);
    if (region !== undefined && (typeof region !== 'string' || nameProblem(region) !== undefined)) {
      throw new UserError('bad_request', 'region must be a region name, like "local"', { hint: 'ward status shows the hosts and their regions' });
    }
    const app = await this.#o.apps.resolve(p, appRef, 'app:deploy', ctx);
    if ((await this.#o.store.volumes.listForApp(app.id)).length >= MAX_VOLUMES_PER_APP) {
      throw new UserError('bad_request', `app "${app.name}" has ${MAX_VOLUMES_PER_APP} volumes, the most one app may have`, { hint: 'destroy volumes it no longer uses' });
    }
    const host = await this.#host(region as string | undefined);
    const id = newId('volume');
    const v: VolumeRecord = {
      id, orgId: app.orgId, appId: app.id, name, region: host.region, hostId: host.id, sizeBytes,
      wrappedKey: '', sealedWith: SEALED_WITH_APP_DATA_KEY, encryption: null, formattedAt: null,
      createdBy: p.userId, createdAt: this.#now(),
    };
    try {
      await this.#o.store.transaction(async (tx) => {
        // The app's data key is made here when it has none, so a failed create leaves no key behind.
        const key = randomBytes(32);
        try {
          v.wrappedKey = await sealVolumeKey(this.#o.keys, tx, v, key);
        } finally {
          key.fill(0);
        }
        await tx.volumes.create(v);
        await this.#o.audit.record(tx, ctx, {
          orgId: app.orgId, action: 'volume.create', target: id, outcome: 'success',
          details: { app: app.name, name, size_bytes: sizeBytes, region: host.region, host: host.name },
        });
      });
    } catch (e) {
      if (e instanceof StoreConflictError && e.constraint === 'volumes.app_name') {
        throw new UserError('name_taken', `app "${app.name}" already has a volume "${name}"`, { hint: 'choose another name, or use the volume that exists' });
      }
      throw e;
    }
    return this.#view(app, v);
  }

  /** list shows the app's volumes (app:read). */
  async list(p: Principal, appRef: string, ctx: CallContext = contextOf(p)): Promise<{ app: AppView; volumes: VolumeView[] }> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:read', ctx);
    const volumes = await Promise.all((await this.#o.store.volumes.listForApp(app.id)).map((v) => this.#view(app, v)));
    return { app, volumes };
  }

  /** show is one volume (app:read), with the encryption it uses. */
  async show(p: Principal, appRef: string, name: string, ctx: CallContext = contextOf(p)): Promise<VolumeView> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:read', ctx);
    return this.#view(app, await this.#find(app, name));
  }

  /**
   * destroy crypto-erases a volume (app:destroy): refused while an instance of the app mounts it; else
   * its wrapped key is deleted in the transaction recording `volume.destroy`, and then the host removes
   * the loop file. If the file cannot be removed now, the data in it is unreadable all the same.
   */
  async destroy(p: Principal, appRef: string, name: string, ctx: CallContext = contextOf(p)): Promise<DestroyedVolume> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:destroy', ctx);
    const v = await this.#find(app, name);
    const view = await this.#view(app, v);
    const files = this.#o.files?.();
    const users = files && files.hostId() === v.hostId ? files.users(v.id) : [];
    await this.#o.store.transaction(async (tx) => {
      const attached = await this.#attached(tx, v);
      if (attached.length > 0 || users.length > 0) {
        const who = [...attached, ...users.filter((u) => !attached.includes(u))];
        throw new UserError('volume_in_use', `volume "${v.name}" is in use by ${who.join(', ')}`, {
          hint: `remove its [[mounts]] entry and deploy, or stop the app's instances first; a running backup finishes by itself`,
          details: { users: who },
        });
      }
      if (!(await tx.volumes.remove(v.id))) throw new UserError('not_found', `app "${app.name}" has no volume "${name}"`);
      await this.#o.audit.record(tx, ctx, {
        orgId: app.orgId, action: 'volume.destroy', target: v.id, outcome: 'success',
        details: { app: app.name, name: v.name, size_bytes: v.sizeBytes, host: view.host, crypto_erase: true },
      });
    });
    let removed = false;
    if (files && files.hostId() === v.hostId) {
      try {
        await files.remove(v.id);
        removed = true;
      } catch (e) {
        this.#o.logger?.warn({ err: e, volume_id: v.id }, 'the destroyed volume\'s loop file could not be removed; its key is gone, so it is unreadable');
      }
    }
    return { volume: { ...view, attached: [] }, key_destroyed: true, file_removed: removed };
  }
}

export interface VolumeKeyServiceOptions {
  store: Store;
  /** keys are the apps' data keys, under which volume keys are sealed. */
  keys: AppKeys;
  audit: Auditor;
  clock: Clock;
}

/**
 * VolumeKeyService is the VolumeSource of the agent in this process: it unwraps a volume's key only for
 * the volume's own host, for an instance of the volume's app placed there to run (or a backup), and
 * records every key it hands out (`volume.key_deliver`) or refuses (outcome `denied`).
 */
export class VolumeKeyService implements VolumeSource {
  readonly #o: VolumeKeyServiceOptions;

  constructor(o: VolumeKeyServiceOptions) {
    this.#o = o;
  }

  #ctx(host: string): CallContext {
    return { actor: { type: 'system', id: null, label: `host ${host}` }, sourceIp: null, requestId: null };
  }

  async #refuse(hostId: string, orgId: string | null, target: string | null, reason: string, message: string, hint: string): Promise<never> {
    await this.#o.audit.record(this.#o.store, this.#ctx(hostId), { orgId, action: 'volume.key_deliver', target, outcome: 'denied', details: { host_id: hostId, reason } });
    throw new UserError(reason === 'not_found' ? 'not_found' : 'bad_request', message, { hint });
  }

  async #unwrap(v: VolumeRecord): Promise<Buffer> {
    try {
      return await openVolumeKey(this.#o.keys, this.#o.store, v);
    } catch (e) {
      if (!(e instanceof SecretIntegrityError)) throw e;
      await this.#o.audit.record(this.#o.store, this.#ctx(v.hostId), { orgId: v.orgId, action: 'volume.key_deliver', target: v.id, outcome: 'failure', details: { volume: v.name, reason: 'integrity' } });
      throw new UserError('secrets_unreadable', `the key of volume "${v.name}" does not decrypt: the database row was altered or moved, or the master key is another`, {
        hint: 'treat it as tampering; see docs/errors.md#secrets_unreadable',
      });
    }
  }

  static ref(v: VolumeRecord): VolumeRef {
    return { id: v.id, orgId: v.orgId, appId: v.appId, name: v.name, sizeBytes: v.sizeBytes };
  }

  async grantForInstance(a: Assignment, hostId: string): Promise<VolumeMountGrant[]> {
    const { store } = this.#o;
    const instance = await store.instances.get(a.instance.id);
    if (!instance || instance.hostId !== hostId || instance.desiredState !== 'running') {
      return this.#refuse(hostId, a.app.orgId, a.instance.id, 'not_placed', `instance ${a.instance.id} is not placed on this host to run`, 'the control plane places instances; an agent asks only for its own');
    }
    const app = await store.apps.get(instance.appId);
    const release = await store.releases.get(instance.releaseId);
    if (!app || !release) return this.#refuse(hostId, null, instance.id, 'not_found', `instance ${instance.id} has no app or release`, 'deploy the app again');
    const wanted = mountsOf(release.config);
    const found: Array<{ v: VolumeRecord; destination: string }> = [];
    for (const m of wanted) {
      const v = await store.volumes.findByName(app.id, m.source);
      if (!v) return this.#refuse(hostId, app.orgId, instance.id, 'not_found', `app "${app.name}" has no volume "${m.source}"`, `ward volumes create ${m.source} --size 1gb -a ${app.name}`);
      if (v.hostId !== hostId) return this.#refuse(hostId, app.orgId, v.id, 'wrong_host', `volume "${v.name}" lives on another host`, 'an instance that mounts a volume is placed on the volume\'s host; deploy again');
      found.push({ v, destination: m.destination });
    }
    const grants: VolumeMountGrant[] = [];
    try {
      for (const { v, destination } of found) grants.push({ volume: VolumeKeyService.ref(v), key: await this.#unwrap(v), destination });
      await store.transaction(async (tx) => {
        for (const { v } of found) {
          await this.#o.audit.record(tx, this.#ctx(hostId), {
            orgId: v.orgId, action: 'volume.key_deliver', target: v.id, outcome: 'success',
            details: { app: app.name, volume: v.name, instance_id: instance.id, host_id: hostId, purpose: 'instance' },
          });
        }
      });
    } catch (e) {
      for (const g of grants) g.key.fill(0);
      throw e;
    }
    return grants;
  }

  async resolveForInstance(a: Assignment, hostId: string): Promise<Array<{ volume: VolumeRef; destination: string }>> {
    const out: Array<{ volume: VolumeRef; destination: string }> = [];
    for (const m of a.release.config.mounts ?? []) {
      const v = await this.#o.store.volumes.findByName(a.app.id, m.source);
      if (v && v.hostId === hostId) out.push({ volume: VolumeKeyService.ref(v), destination: m.destination });
    }
    return out;
  }

  async grantForHost(volumeId: string, hostId: string, purpose: 'backup' | 'restore'): Promise<VolumeGrant> {
    const v = await this.#o.store.volumes.get(volumeId);
    if (!v) return this.#refuse(hostId, null, volumeId, 'not_found', `there is no volume ${volumeId}`, 'it may have been destroyed');
    if (v.hostId !== hostId) return this.#refuse(hostId, v.orgId, v.id, 'wrong_host', `volume "${v.name}" lives on another host`, 'run it on the volume\'s host');
    const key = await this.#unwrap(v);
    try {
      await this.#o.audit.record(this.#o.store, this.#ctx(hostId), {
        orgId: v.orgId, action: 'volume.key_deliver', target: v.id, outcome: 'success', details: { volume: v.name, host_id: hostId, purpose },
      });
    } catch (e) {
      key.fill(0);
      throw e;
    }
    return { volume: VolumeKeyService.ref(v), key };
  }

  async formatted(volumeId: string, hostId: string, encryption: EncryptionKind): Promise<void> {
    const v = await this.#o.store.volumes.get(volumeId);
    if (!v || v.hostId !== hostId || v.encryption !== null) return;
    await this.#o.store.volumes.setFormatted(volumeId, encryption, toTimestamp(this.#o.clock.now()));
  }
}

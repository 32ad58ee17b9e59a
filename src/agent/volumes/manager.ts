/**
 * VolumeManager owns the volumes mounted on this host: it makes each volume's loop file, opens it with
 * its encryption backend when the first user (an instance, or a backup through withMounted) needs it,
 * and closes it (key removed, unmounted) when the last one lets go. Opens and closes of one volume are
 * serialised; users are counted, so an instance and a backup share one mount.
 *
 * Layout under root (default `<dataDir>/volumes`, mode 0711):
 *   <vol_…>/volume.img   the loop file, sparse, of the volume's size (0600, ciphertext)
 *   <vol_…>/mnt/         its file system while in use; `mnt/data` is what instances see
 */
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isId, UserError } from '../../core/index.ts';
import { chooseBackend, hostCrypto } from './detect.ts';
import { FscryptBackend, hasExt4Superblock } from './fscrypt.ts';
import { Luks2Backend } from './luks.ts';
import { mounted } from './mounts.ts';
import type { EncryptionBackend, EncryptionKind, Owner, VolumePaths, VolumeRef, VolumeSource } from './types.ts';

export interface VolumeManagerOptions {
  /** root holds the volumes; the agent passes `<dataDir>/volumes`. */
  root: string;
  /** backend formats new volumes; default chooseBackend(hostCrypto()). */
  backend?: EncryptionBackend;
  /** source hands out keys for withMounted and hears which backend formatted a volume. */
  source?: VolumeSource;
  /** hostId names this host to the source (the agent knows it once registered). */
  hostId?: () => string;
  /** owner is who owns a new volume's data directory when withMounted formats it (default: mapped root). */
  defaultOwner?: Owner;
}

/** MAPPED_ROOT is container uid 0 as the runtime's default user namespace maps it (host 100000). */
const MAPPED_ROOT: Owner = { uid: 100_000, gid: 100_000 };

export class VolumeManager {
  readonly root: string;
  readonly backend: EncryptionBackend;
  readonly #source: VolumeSource | undefined;
  readonly #hostId: () => string;
  readonly #defaultOwner: Owner;
  readonly #users = new Map<string, Set<string>>();
  readonly #locks = new Map<string, Promise<unknown>>();
  #backupSeq = 0;

  constructor(o: VolumeManagerOptions) {
    this.root = o.root;
    this.backend = o.backend ?? chooseBackend(hostCrypto());
    this.#source = o.source;
    this.#hostId = o.hostId ?? (() => '');
    this.#defaultOwner = o.defaultOwner ?? MAPPED_ROOT;
  }

  /** paths are a volume's places on this host. */
  paths(volumeId: string): VolumePaths {
    if (!isId(volumeId, 'volume')) throw new TypeError(`not a volume id: ${volumeId}`);
    const dir = join(this.root, volumeId);
    const mountPoint = join(dir, 'mnt');
    return { dir, file: join(dir, 'volume.img'), mountPoint, data: join(mountPoint, 'data') };
  }

  /** #serial runs fn after every earlier operation on the same volume has finished. */
  #serial<T>(volumeId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(volumeId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.#locks.set(volumeId, tail);
    void tail.then(() => {
      if (this.#locks.get(volumeId) === tail) this.#locks.delete(volumeId);
    });
    return next;
  }

  /**
   * #backendOf is the backend a volume's loop file was formatted with (read from its header), or this
   * host's choice for a file not formatted yet.
   */
  async #backendOf(paths: VolumePaths): Promise<EncryptionBackend> {
    if (await new Luks2Backend().isFormatted(paths)) return this.backend.kind === 'luks2' ? this.backend : new Luks2Backend();
    if (await hasExt4Superblock(paths.file)) return this.backend.kind === 'fscrypt' ? this.backend : new FscryptBackend();
    return this.backend;
  }

  /** #ensureFile makes the volume's directory and its sparse loop file of the volume's size. */
  async #ensureFile(volume: VolumeRef, paths: VolumePaths): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    await mkdir(paths.dir, { recursive: true, mode: 0o711 });
    const fh = await open(paths.file, 'a', 0o600);
    try {
      // Sparse: blocks are used as the app writes. The size is what the file system is made with.
      if ((await fh.stat()).size === 0) await fh.truncate(volume.sizeBytes);
    } finally {
      await fh.close();
    }
  }

  /**
   * acquire makes the volume available for `user` and returns the directory of its files. The first
   * user opens it with key (formatting a new volume, whose data directory `owner` gets); later users
   * share that mount. The caller zeroes key afterwards. Returns also whether it formatted the volume.
   */
  acquire(volume: VolumeRef, user: string, key: Buffer, owner: Owner): Promise<{ dir: string; formatted: EncryptionKind | undefined }> {
    const paths = this.paths(volume.id);
    return this.#serial(volume.id, async () => {
      const users = this.#users.get(volume.id);
      if (users?.size && mounted(paths.mountPoint)) {
        users.add(user);
        return { dir: paths.data, formatted: undefined };
      }
      await this.#ensureFile(volume, paths);
      const backend = await this.#backendOf(paths);
      const fresh = !(await backend.isFormatted(paths));
      await backend.open(paths, key, owner);
      this.#users.set(volume.id, new Set([...(users ?? []), user]));
      if (fresh) await this.#source?.formatted(volume.id, this.#hostId(), backend.kind).catch(() => {});
      return { dir: paths.data, formatted: fresh ? backend.kind : undefined };
    });
  }

  /**
   * adopt counts `user` as a user of a volume that is mounted already (an agent restarted while its
   * instance kept running) and returns its directory, or undefined when it is not mounted. It changes
   * nothing on the host.
   */
  adopt(volumeId: string, user: string): string | undefined {
    const paths = this.paths(volumeId);
    if (!mounted(paths.mountPoint)) return undefined;
    const users = this.#users.get(volumeId) ?? new Set<string>();
    users.add(user);
    this.#users.set(volumeId, users);
    return paths.data;
  }

  /**
   * release lets go of the volume for `user`; when nobody else uses it, the key is removed and the
   * volume unmounted (its files are then ciphertext only). In a fresh agent that never saw the user,
   * a mounted volume with no known users is closed too (poststop after a crash).
   */
  release(volumeId: string, user: string): Promise<void> {
    const paths = this.paths(volumeId);
    return this.#serial(volumeId, async () => {
      const users = this.#users.get(volumeId);
      users?.delete(user);
      if (users && users.size > 0) return;
      this.#users.delete(volumeId);
      if (!mounted(paths.mountPoint)) return;
      const backend = await this.#backendOf(paths);
      await backend.close(paths);
    });
  }

  /** users lists who uses a volume on this host now (instance ids, `backup:N`). */
  users(volumeId: string): string[] {
    return [...(this.#users.get(volumeId) ?? [])];
  }

  /** mountedPath is the directory of the volume's files while it is mounted on this host, else undefined. */
  mountedPath(volumeId: string): string | undefined {
    const paths = this.paths(volumeId);
    return mounted(paths.mountPoint) ? paths.data : undefined;
  }

  /** encryptionOf says which backend a volume's loop file on this host uses; undefined when not formatted or absent. */
  async encryptionOf(volumeId: string): Promise<EncryptionKind | undefined> {
    const paths = this.paths(volumeId);
    if (!(await stat(paths.file).catch(() => undefined))) return undefined;
    const backend = await this.#backendOf(paths);
    return (await backend.isFormatted(paths)) ? backend.kind : undefined;
  }

  /**
   * withMounted runs fn with the volume's files mounted on this host (see docs/volumes.md: the
   * interface backups use). A volume an instance has mounted is shared as it is; otherwise its key is
   * asked of the source for `purpose` (audited there), the volume is opened, and closed again after fn,
   * even when fn throws.
   */
  async withMounted<T>(volume: VolumeRef, purpose: 'backup' | 'restore', fn: (dir: string) => Promise<T>): Promise<T> {
    const paths = this.paths(volume.id);
    const user = `${purpose}:${++this.#backupSeq}`;
    let dir = await this.#serial(volume.id, async () => {
      const users = this.#users.get(volume.id);
      if (!users?.size || !mounted(paths.mountPoint)) return undefined;
      users.add(user);
      return paths.data;
    });
    if (dir === undefined) {
      if (!this.#source) throw new Error('withMounted: this VolumeManager has no VolumeSource to get keys from');
      if (!(await stat(paths.file).catch(() => undefined)) || !(await (await this.#backendOf(paths)).isFormatted(paths))) {
        if (purpose === 'backup') {
          throw new UserError('not_found', `volume "${volume.name}" has never been used on this host: there is nothing to back up`, {
            hint: 'deploy the app that mounts it first',
          });
        }
      }
      const grant = await this.#source.grantForHost(volume.id, this.#hostId(), purpose);
      try {
        dir = (await this.acquire(volume, user, grant.key, this.#defaultOwner)).dir;
      } finally {
        grant.key.fill(0);
      }
    }
    try {
      return await fn(dir);
    } finally {
      await this.release(volume.id, user);
    }
  }

  /**
   * remove deletes the volume's loop file and directory from this host, after its key was destroyed
   * (VolumeService.destroy). A volume still mounted is closed first: its key was destroyed in the store,
   * so nothing could open it again anyway.
   */
  remove(volumeId: string): Promise<void> {
    const paths = this.paths(volumeId);
    return this.#serial(volumeId, async () => {
      if (mounted(paths.mountPoint)) await (await this.#backendOf(paths)).close(paths);
      this.#users.delete(volumeId);
      await rm(paths.dir, { recursive: true, force: true });
    });
  }
}

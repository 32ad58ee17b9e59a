import type { Selectable } from 'kysely';
import type { VolumesTable } from './schema.ts';
import type { VolumeRecord, VolumeRepo } from './types.ts';
import { guardedWrite, type Ctx } from './kysely-store.ts';

// The repo of issue "Volumes" (migration 8). It follows kysely-store.ts: one implementation for both
// databases. The volume's key is here only wrapped by the KEK; removing the row destroys it.

function toVolume(r: Selectable<VolumesTable>): VolumeRecord {
  return {
    id: r.id,
    orgId: r.org_id,
    appId: r.app_id,
    name: r.name,
    region: r.region,
    hostId: r.host_id,
    sizeBytes: Number(r.size_bytes),
    wrappedKey: r.wrapped_key,
    sealedWith: r.sealed_with,
    encryption: r.encryption ?? null,
    formattedAt: r.formatted_at ?? null,
    createdBy: r.created_by ?? null,
    createdAt: r.created_at,
  };
}

export class Volumes implements VolumeRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(v: VolumeRecord): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('volumes')
        .values({
          id: v.id,
          org_id: v.orgId,
          app_id: v.appId,
          name: v.name,
          region: v.region,
          host_id: v.hostId,
          size_bytes: v.sizeBytes,
          wrapped_key: v.wrappedKey,
          sealed_with: v.sealedWith,
          encryption: v.encryption,
          formatted_at: v.formattedAt,
          created_by: v.createdBy,
          created_at: v.createdAt,
        })
        .execute(),
    );
  }

  async get(id: string): Promise<VolumeRecord | undefined> {
    const r = await this.#c.db.selectFrom('volumes').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toVolume(r);
  }

  async findByName(appId: string, name: string): Promise<VolumeRecord | undefined> {
    const r = await this.#c.db.selectFrom('volumes').selectAll().where('app_id', '=', appId).where('name', '=', name).executeTakeFirst();
    return r && toVolume(r);
  }

  async listForApp(appId: string): Promise<VolumeRecord[]> {
    return (await this.#c.db.selectFrom('volumes').selectAll().where('app_id', '=', appId).orderBy('name').execute()).map(toVolume);
  }

  async listForHost(hostId: string): Promise<VolumeRecord[]> {
    return (await this.#c.db.selectFrom('volumes').selectAll().where('host_id', '=', hostId).orderBy('name').orderBy('id').execute()).map(toVolume);
  }

  async setFormatted(id: string, encryption: string, at: string): Promise<boolean> {
    const r = await this.#c.db.updateTable('volumes').set({ encryption, formatted_at: at }).where('id', '=', id).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async remove(id: string): Promise<boolean> {
    const r = await guardedWrite(this.#c, () => this.#c.db.deleteFrom('volumes').where('id', '=', id).executeTakeFirst());
    return Number(r.numDeletedRows) > 0;
  }
}

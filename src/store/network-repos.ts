import type { Selectable } from 'kysely';
import type { HostMeshTable, OrgNetworksTable, WireGuardPeersTable } from './schema.ts';
import type { HostMeshRecord, HostMeshRepo, OrgNetworkRecord, OrgNetworkRepo, WireGuardPeerRecord, WireGuardPeerRepo } from './types.ts';
import { guardedWrite, type Ctx } from './kysely-store.ts';

// The repos of issue "Private networking" (migration 6): each org's network settings and people's
// WireGuard peers; and (migration 10) each host's place in the mesh. They follow kysely-store.ts: one implementation for both databases. No private key
// is ever stored: a peer is its public key and address.

function toOrgNetwork(r: Selectable<OrgNetworksTable>): OrgNetworkRecord {
  return { orgId: r.org_id, prefix: r.prefix, egress: r.egress === 'deny' ? 'deny' : 'allow', updatedAt: r.updated_at };
}

function toPeer(r: Selectable<WireGuardPeersTable>): WireGuardPeerRecord {
  return { id: r.id, orgId: r.org_id, name: r.name, publicKey: r.public_key, address: r.address, createdBy: r.created_by ?? null, createdAt: r.created_at };
}

export class OrgNetworks implements OrgNetworkRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async get(orgId: string): Promise<OrgNetworkRecord | undefined> {
    const r = await this.#c.db.selectFrom('org_networks').selectAll().where('org_id', '=', orgId).executeTakeFirst();
    return r && toOrgNetwork(r);
  }

  async put(n: OrgNetworkRecord): Promise<void> {
    const row = { prefix: n.prefix, egress: n.egress, updated_at: n.updatedAt };
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('org_networks')
        .values({ org_id: n.orgId, ...row })
        .onConflict((oc) => oc.column('org_id').doUpdateSet(row))
        .execute(),
    );
  }

  async list(): Promise<OrgNetworkRecord[]> {
    return (await this.#c.db.selectFrom('org_networks').selectAll().orderBy('org_id').execute()).map(toOrgNetwork);
  }
}

export class WireGuardPeers implements WireGuardPeerRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async create(p: WireGuardPeerRecord): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('wireguard_peers')
        .values({ id: p.id, org_id: p.orgId, name: p.name, public_key: p.publicKey, address: p.address, created_by: p.createdBy, created_at: p.createdAt })
        .execute(),
    );
  }

  async findByName(orgId: string, name: string): Promise<WireGuardPeerRecord | undefined> {
    const r = await this.#c.db.selectFrom('wireguard_peers').selectAll().where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();
    return r && toPeer(r);
  }

  async listForOrg(orgId: string): Promise<WireGuardPeerRecord[]> {
    return (await this.#c.db.selectFrom('wireguard_peers').selectAll().where('org_id', '=', orgId).orderBy('name').execute()).map(toPeer);
  }

  async list(): Promise<WireGuardPeerRecord[]> {
    return (await this.#c.db.selectFrom('wireguard_peers').selectAll().orderBy('org_id').orderBy('name').execute()).map(toPeer);
  }

  async remove(id: string): Promise<boolean> {
    const r = await guardedWrite(this.#c, () => this.#c.db.deleteFrom('wireguard_peers').where('id', '=', id).executeTakeFirst());
    return Number(r.numDeletedRows) > 0;
  }
}

function toHostMesh(r: Selectable<HostMeshTable>): HostMeshRecord {
  return { hostId: r.host_id, index: Number(r.mesh_index), publicKey: r.public_key, endpoint: r.endpoint, updatedAt: r.updated_at };
}

export class HostMesh implements HostMeshRepo {
  readonly #c: Ctx;
  constructor(c: Ctx) {
    this.#c = c;
  }

  async get(hostId: string): Promise<HostMeshRecord | undefined> {
    const r = await this.#c.db.selectFrom('host_mesh').selectAll().where('host_id', '=', hostId).executeTakeFirst();
    return r && toHostMesh(r);
  }

  async create(r: HostMeshRecord): Promise<void> {
    await guardedWrite(this.#c, () =>
      this.#c.db
        .insertInto('host_mesh')
        .values({ host_id: r.hostId, mesh_index: r.index, public_key: r.publicKey, endpoint: r.endpoint, updated_at: r.updatedAt })
        .execute(),
    );
  }

  async update(hostId: string, r: { publicKey: string; endpoint: string; updatedAt: string }): Promise<boolean> {
    const res = await guardedWrite(this.#c, () =>
      this.#c.db.updateTable('host_mesh').set({ public_key: r.publicKey, endpoint: r.endpoint, updated_at: r.updatedAt }).where('host_id', '=', hostId).executeTakeFirst(),
    );
    return Number(res.numUpdatedRows) > 0;
  }

  async list(): Promise<HostMeshRecord[]> {
    return (await this.#c.db.selectFrom('host_mesh').selectAll().orderBy('mesh_index').execute()).map(toHostMesh);
  }
}

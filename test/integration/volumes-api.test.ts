// The volumes API and its effect on deploys, through the real API on a SQLite store (no agent runs
// here: volumes are records, and a deploy places instances on hosts registered by hand). Bad input gets
// a clear error and changes nothing; a deploy's [[mounts]] must name volumes of the app, and its
// instances are pinned to the volumes' host; destroy is refused while an instance mounts the volume,
// and otherwise deletes the wrapped key in one transaction with its audit entry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApi } from '../../src/api/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { ManualClock } from '../../src/core/index.ts';
import { newLogger } from '../../src/server/index.ts';
import { ImageStore } from '../../src/agent/runtime/index.ts';
import { ociArchive } from '../fixtures/archives.ts';

const PASSWORD = 'correct horse battery staple';

describe('volumes API', () => {
  let dir = '';
  let store: Store;
  let api: FastifyInstance;
  let owner = '';
  let developer = '';
  let archive: Buffer;
  const clock = new ManualClock(Date.UTC(2026, 10, 29, 8, 0, 0));
  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, token: string, payload?: object) =>
    api.inject({ method, url, ...(payload === undefined ? {} : { payload }), headers: { authorization: `Bearer ${token}` } });
  const body = (r: LightMyRequestResponse) => r.json() as any;
  const volumeAudits = async () => (await store.audit.list({ limit: 1000 })).filter((e) => e.action.startsWith('volume.')).length;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-volumes-api-'));
    store = await openStore({ dataDir: dir });
    api = await buildApi({ store, clock, logger: newLogger('silent'), version: '0.0.0-test', deploys: { images: new ImageStore({ dataDir: dir }), uploadDir: join(dir, 'uploads') } });
    await api.ready();
    archive = await ociArchive();
    const at = clock.now().toISOString();
    // Two hosts; "h-b" holds no instances, so only a pin puts an instance there over "h-a".
    await store.hosts.register({ id: 'hst_0000000000000000000000000a', name: 'h-a', region: 'local', status: 'ready', capacity: { memoryBytes: 8 * 1024 ** 3, cpus: 4 }, lastHeartbeat: at, createdAt: at });
    await store.hosts.register({ id: 'hst_0000000000000000000000000b', name: 'h-b', region: 'east', status: 'ready', capacity: { memoryBytes: 8 * 1024 ** 3, cpus: 4 }, lastHeartbeat: at, createdAt: at });
    const r = await api.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: 'owner@example.com', password: PASSWORD, org: 'acme' } });
    owner = body(r).session.token;
    const inv = await call('POST', '/v1/orgs/acme/invites', owner, { role: 'developer' });
    developer = body(await api.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: 'dev@example.com', password: PASSWORD, invite: body(inv).invite.code } })).session.token;
    for (const app of ['portal', 'other']) assert.equal((await call('POST', '/v1/apps', owner, { name: app, org: 'acme' })).statusCode, 201);
  });

  after(async () => {
    await api?.close();
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('create, list, show: its own key, wrapped; show says the encryption is settled on first mount', async () => {
    const r = await call('POST', '/v1/apps/portal/volumes', developer, { name: 'pgdata', size: '1gb', region: 'east' });
    assert.equal(r.statusCode, 201, r.body);
    const v = body(r).volume;
    assert.equal(v.size_bytes, 1024 ** 3);
    assert.equal(v.host, 'h-b');
    assert.equal(v.encryption, null);
    assert.match(v.encryption_description, /not formatted yet/);
    assert.ok(!('wrapped_key' in v) && !JSON.stringify(v).includes('k1.'), 'no key material in the answer');
    const rec = (await store.volumes.get(v.id))!;
    assert.ok(rec.wrappedKey.length > 40);
    const r2 = await call('POST', '/v1/apps/portal/volumes', developer, { name: 'assets', size: 64 * 1024 ** 2, region: 'east' });
    assert.equal(r2.statusCode, 201, r2.body);
    assert.notEqual((await store.volumes.get(body(r2).volume.id))!.wrappedKey, rec.wrappedKey);
    assert.deepEqual(body(await call('GET', '/v1/apps/portal/volumes', developer)).volumes.map((x: any) => x.name), ['assets', 'pgdata']);
    assert.equal(body(await call('GET', '/v1/apps/portal/volumes/pgdata', developer)).volume.id, v.id);
    assert.equal((await call('GET', '/v1/apps/portal/volumes/nope', developer)).statusCode, 404);
    // A volume of one app is not reachable through another.
    assert.equal((await call('GET', `/v1/apps/other/volumes/${v.id}`, owner)).statusCode, 404);
  });

  test('bad input gets a clear error and changes nothing', async () => {
    const before = (await store.volumes.listForApp((await store.apps.findByName('portal'))!.id)).length;
    const audits = await volumeAudits();
    const cases: Array<[object, number, string, RegExp]> = [
      [{ name: 'x1', size: '0gb' }, 400, 'bad_request', /between 64MB and 16TB/],
      [{ name: 'x1', size: 0 }, 400, 'bad_request', /between/],
      [{ name: 'x1', size: '1mb' }, 400, 'bad_request', /between/],
      [{ name: 'x1', size: '100tb' }, 400, 'bad_request', /between/],
      [{ name: 'x1', size: '99999999999999999999gb' }, 400, 'bad_request', /between|invalid/],
      [{ name: 'x1', size: 'lots' }, 400, 'bad_request', /invalid volume size/],
      [{ name: 'x1', size: '100.5mb' }, 400, 'bad_request', /whole number of MiB/],
      [{ name: 'x1', size: -5 }, 400, 'bad_request', /between/],
      [{ name: 'Bad_Name', size: '1gb' }, 400, 'invalid_name', /invalid volume name/],
      [{ name: 'x1' }, 400, 'bad_request', /size/],
      [{ name: 'x1', size: '1gb', region: 'mars' }, 503, 'unavailable', /no host is ready to hold a volume in region "mars"/],
      [{ name: 'pgdata', size: '1gb' }, 409, 'name_taken', /already has a volume "pgdata"/],
      [{ name: 'x1', size: '1gb', extra: true }, 400, 'bad_request', /additional/],
    ];
    for (const [payload, status, code, message] of cases) {
      const r = await call('POST', '/v1/apps/portal/volumes', developer, payload);
      assert.equal(r.statusCode, status, `${JSON.stringify(payload)}: ${r.body}`);
      assert.equal(body(r).error.code, code, JSON.stringify(payload));
      assert.match(body(r).error.message, message, JSON.stringify(payload));
    }
    assert.equal((await call('POST', '/v1/apps/nope/volumes', developer, { name: 'x1', size: '1gb' })).statusCode, 404);
    assert.equal((await store.volumes.listForApp((await store.apps.findByName('portal'))!.id)).length, before);
    assert.equal(await volumeAudits(), audits, 'no volume.* audit entry for a refused request');
  });

  test('[[mounts]]: an unknown volume is refused; the instances of a deploy go to the volume\'s host', async () => {
    const upload = async (app: string) => {
      const r = await api.inject({ method: 'POST', url: `/v1/apps/${app}/images?format=oci-archive`, payload: archive, headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/octet-stream' } });
      assert.equal(r.statusCode, 201, r.body);
      return body(r).image.digest as string;
    };
    const image = await upload('portal');
    const bad = await call('POST', '/v1/apps/portal/deploy', owner, { image, config: { app: 'portal', mounts: [{ source: 'nope', destination: '/data' }] } });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.equal(body(bad).error.code, 'invalid_config');
    assert.match(body(bad).error.message, /mounts\[0\]\.source: app "portal" has no volume "nope"/);
    const wrongRegion = await call('POST', '/v1/apps/portal/deploy', owner, { image, config: { app: 'portal', primary_region: 'local', mounts: [{ source: 'pgdata', destination: '/data' }] } });
    assert.equal(body(wrongRegion).error.code, 'invalid_config');
    assert.match(body(wrongRegion).error.message, /in region "east", not primary_region "local"/);
    for (const destination of ['/proc/x', 'data', '/', '/data/../etc']) {
      const badDest = await call('POST', '/v1/apps/portal/deploy', owner, { image, config: { app: 'portal', mounts: [{ source: 'pgdata', destination }] } });
      assert.equal(body(badDest).error.code, 'invalid_config', destination);
      assert.match(body(badDest).error.message, /mounts\[0\]\.destination/, destination);
    }
    const portal = (await store.apps.findByName('portal'))!;
    assert.equal((await store.releases.listForApp(portal.id)).length, 0, 'nothing was written');

    const ok = await call('POST', '/v1/apps/portal/deploy', owner, { image, config: { app: 'portal', mounts: [{ source: 'pgdata', destination: '/data' }] } });
    assert.equal(ok.statusCode, 201, ok.body);
    await api.deployer.stepAll();
    const instances = await store.instances.listForApp(portal.id, { active: true });
    assert.ok(instances.length >= 1);
    for (const i of instances) assert.equal(i.hostId, 'hst_0000000000000000000000000b', 'pinned to the volume\'s host');

    // In use: destroy is refused, nothing changes.
    const audits = await volumeAudits();
    const refused = await call('DELETE', '/v1/apps/portal/volumes/pgdata', owner);
    assert.equal(refused.statusCode, 409, refused.body);
    assert.equal(body(refused).error.code, 'volume_in_use');
    assert.ok(body(refused).error.hint);
    assert.ok(await store.volumes.findByName(portal.id, 'pgdata'));
    assert.equal(await volumeAudits(), audits);
  });

  test('destroy: developers may not; an owner destroys the key with its audit entry', async () => {
    const denied = await call('DELETE', '/v1/apps/portal/volumes/assets', developer);
    assert.equal(denied.statusCode, 403, denied.body);
    const portal = (await store.apps.findByName('portal'))!;
    const v = (await store.volumes.findByName(portal.id, 'assets'))!;
    const r = await call('DELETE', '/v1/apps/portal/volumes/assets', owner);
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual([body(r).key_destroyed, body(r).file_removed], [true, false], 'no agent here: the file stays, unreadable');
    assert.equal(await store.volumes.get(v.id), undefined, 'the wrapped key is gone');
    const entry = (await store.audit.list({ limit: 1000 })).find((e) => e.action === 'volume.destroy' && e.target === v.id);
    assert.ok(entry, 'volume.destroy is audited');
    assert.equal((entry!.details as any).crypto_erase, true);
    assert.equal((await call('DELETE', '/v1/apps/portal/volumes/assets', owner)).statusCode, 404);
  });
});

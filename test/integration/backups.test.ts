// Backups through the API and the BackupService: targets, runs, lists, policies, the scheduler across a
// restart, restores, drills, and loud failure (a failed run is recorded, audited, counted and logged).
// restic and its repositories are real; the volume host is a stand-in that serves each volume as a plain
// directory (the encrypted volumes themselves are src/agent/volumes' and are tested there), so these
// tests are about what Ward does around restic, not about block encryption.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApi } from '../../src/api/index.ts';
import { openStore, type Store, type VolumeRecord } from '../../src/store/index.ts';
import { ManualClock, toTimestamp } from '../../src/core/index.ts';
import { ephemeralKeyProvider, openSealingKeys, unseal, type KeyProvider } from '../../src/secrets/index.ts';
import { newLogger } from '../../src/server/index.ts';
import { BackupService, type VolumeHost } from '../../src/services/index.ts';
import { directoryScratch, ResticEngine, treeDigestOf } from '../../src/backups/index.ts';
import { ImageStore } from '../../src/agent/runtime/index.ts';
import { LogJournal } from '../../src/agent/index.ts';
import { ociArchive } from '../fixtures/archives.ts';
import { scanFiles } from './canary-scan.ts';
import { start } from '../../src/exec/index.ts';
import { createServer, connect } from 'node:net';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

const PASSWORD = 'correct horse battery staple';
const HOST_ID = 'hst_00000000000000000000000001';

/** PlainVolumes serves each volume as a directory: the stand-in for the agent's VolumeManager and runtime. */
class PlainVolumes implements VolumeHost {
  readonly root: string;
  /** using maps a volume id to the instances that "have it mounted". */
  readonly using = new Map<string, string[]>();
  /** execs records what ran "inside" an instance; onExec decides what that does. */
  readonly execs: Array<{ instanceId: string; argv: string[] }> = [];
  onExec: (dir: string) => Promise<{ code: number; stdout: string; stderr: string }> = async () => ({ code: 0, stdout: '', stderr: '' });
  #volumes = new Map<string, string>();

  constructor(root: string) {
    this.root = root;
  }
  hostId() {
    return HOST_ID;
  }
  dir(volumeId: string): string {
    return join(this.root, volumeId);
  }
  async withMounted<T>(volume: VolumeRecord, _purpose: 'backup' | 'restore', fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = this.dir(volume.id);
    await mkdir(dir, { recursive: true });
    this.#volumes.set(volume.id, dir);
    return fn(dir);
  }
  instancesUsing(volumeId: string): string[] {
    return this.using.get(volumeId) ?? [];
  }
  async exec(instanceId: string, argv: string[]) {
    this.execs.push({ instanceId, argv });
    const volumeId = [...this.using].find(([, ids]) => ids.includes(instanceId))?.[0];
    return this.onExec(this.dir(volumeId!));
  }
}

describe('backups through the API', () => {
  let dir: string;
  let store: Store;
  let api: FastifyInstance;
  let keys: KeyProvider;
  let volumes: PlainVolumes;
  const logLines: string[] = [];
  const clock = new ManualClock(Date.UTC(2026, 10, 29, 8, 0, 0));
  let token: string;
  let devToken: string;
  let appName: string;
  let archive: Buffer;
  let seq = 0;
  const uniq = (p: string) => `${p}-${++seq}`;

  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object, as = token) =>
    api.inject({ method, url, ...(payload === undefined ? {} : { payload }), headers: { authorization: `Bearer ${as}` } });
  const body = (r: LightMyRequestResponse) => r.json() as any;
  const ok = (r: LightMyRequestResponse, what: string) => assert.ok(r.statusCode >= 200 && r.statusCode < 300, `${what}: ${r.statusCode} ${r.body}`);

  async function newVolume(app = appName): Promise<VolumeRecord> {
    const name = uniq('vol');
    ok(await call('POST', `/v1/apps/${app}/volumes`, { name, size: '64MB' }), 'create volume');
    const a = (await store.apps.findByName(app))!;
    const v = (await store.volumes.findByName(a.id, name))!;
    // The host formats a volume on its first mount; the scheduler skips volumes never formatted.
    await store.volumes.setFormatted(v.id, 'fscrypt', toTimestamp(clock.now()));
    return (await store.volumes.get(v.id))!;
  }

  async function fill(v: VolumeRecord, files: Record<string, string | Buffer>): Promise<string> {
    const d = volumes.dir(v.id);
    await mkdir(d, { recursive: true });
    for (const [name, data] of Object.entries(files)) {
      await mkdir(join(d, name, '..'), { recursive: true });
      await writeFile(join(d, name), data);
    }
    return d;
  }

  const metric = async (name: string, labels: string) => {
    const text = (await api.inject({ method: 'GET', url: '/metrics' })).body;
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ward-backups-api-'));
    store = await openStore({ dataDir: dir });
    keys = ephemeralKeyProvider();
    volumes = new PlainVolumes(join(dir, 'volumes'));
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logLines.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    api = await buildApi({
      store,
      clock,
      keys,
      logger: newLogger('info', sink),
      version: '0.0.0-test',
      deploys: { images: new ImageStore({ dataDir: dir }), logs: new LogJournal({ dir: join(dir, 'logs') }), uploadDir: join(dir, 'uploads') },
      backups: { host: () => volumes, scratch: directoryScratch(join(dir, 'scratch')), engine: new ResticEngine() },
    });
    await api.ready();
    const at = clock.now().toISOString();
    await store.hosts.register({ id: HOST_ID, name: 'backups-host', region: 'local', status: 'ready', capacity: { memoryBytes: 8 * 1024 ** 3, cpus: 4 }, lastHeartbeat: at, createdAt: at });
    const first = await api.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: 'owner@example.com', password: PASSWORD, org: 'acme' } });
    ok(first, 'signup');
    token = body(first).session.token;
    const inv = await call('POST', '/v1/orgs/acme/invites', { role: 'developer' });
    const dev = await api.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: 'dev@example.com', password: PASSWORD, invite: body(inv).invite.code } });
    devToken = body(dev).session.token;
    appName = uniq('app');
    ok(await call('POST', '/v1/apps', { name: appName, org: 'acme' }), 'create app');
    archive = await ociArchive();
  });

  after(async () => {
    await api?.close();
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('without a target, backups say so; a bad repository is refused', async () => {
    const v = await newVolume();
    const r = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups`);
    assert.equal(r.statusCode, 409, r.body);
    assert.equal(body(r).error.code, 'backup_target_missing');
    assert.equal((await call('GET', '/v1/orgs/acme/backups/target')).statusCode, 409);
    const bad = await call('PUT', '/v1/orgs/acme/backups/target', { repository: 'relative/path' });
    assert.equal(bad.statusCode, 400, bad.body);
    const dev = await call('PUT', '/v1/orgs/acme/backups/target', { repository: join(dir, 'repo-dev') }, devToken);
    assert.equal(dev.statusCode, 403, 'a developer cannot point the org\'s backups elsewhere');
  });

  test('set target, back up, list; the key is on no disk and in no log, and the repository holds no plaintext', async () => {
    const repo = join(dir, 'repo');
    const set = await call('PUT', '/v1/orgs/acme/backups/target', { repository: repo });
    ok(set, 'set target');
    assert.equal(body(set).initialized, true);
    assert.equal(body(set).target.kind, 'local');
    // Setting it again keeps the key (the repository opens with it).
    const again = await call('PUT', '/v1/orgs/acme/backups/target', { repository: repo });
    assert.equal(body(again).initialized, false);

    const v = await newVolume();
    const canary = `WARD-CANARY-${randomBytes(12).toString('hex')}`;
    await fill(v, { 'db/data.bin': randomBytes(200_000), 'notes.txt': `patient ${canary}\n` });
    const r = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups`, undefined, devToken);
    assert.equal(r.statusCode, 201, r.body);
    const run = body(r).run;
    assert.equal(run.status, 'succeeded');
    assert.equal(run.consistency, 'stopped', 'no instance had it: files at rest');
    assert.match(run.snapshot_id, /^[0-9a-f]{64}$/);
    assert.equal(run.files, 2);

    const list = body(await call('GET', `/v1/apps/${appName}/backups?volume=${v.name}`, undefined, devToken)).runs;
    assert.deepEqual(list.map((x: any) => [x.kind, x.status, x.snapshot_id]), [['backup', 'succeeded', run.snapshot_id]]);
    assert.equal(await metric('ward_backup_runs_total', 'kind="backup",outcome="succeeded"'), 1);

    // The org key, as the server holds it, sealed: find it the way only the server can, then look for it everywhere.
    const sealing = await openSealingKeys(store, keys, () => toTimestamp(clock.now()));
    const org = (await store.orgs.findByName('acme'))!;
    const sealed = JSON.parse((await unseal(sealing, 'backup-key', (await store.backups.getTarget(org.id))!.passwordSealed, org.id)).toString()) as { key: string };
    const key = Buffer.from(sealed.key);
    assert.ok(key.length >= 32);
    const scan = await scanFiles([dir], [key, Buffer.from(canary)], { skip: [join(dir, 'volumes')] });
    assert.deepEqual(scan.hits[0], [], 'the backup key is in no file (database, repository, logs)');
    assert.deepEqual(scan.hits[1], [], 'the canary is in no file outside the volume: the repository is encrypted');
    assert.ok(!logLines.some((l) => l.includes(key.toString())), 'the key is in no log line');
    assert.ok(logLines.some((l) => l.includes('backup backup succeeded')));
    const t = body(await call('GET', '/v1/orgs/acme/backups/target', undefined, devToken)).target;
    assert.equal(t.repository, repo);
    assert.ok(!JSON.stringify(t).includes(key.toString()));
  });

  test('an empty volume is backed up as empty: a success with no snapshot, not a failure', async () => {
    const v = await newVolume();
    const r = body(await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups`)).run;
    assert.equal(r.status, 'succeeded');
    assert.equal(r.snapshot_id, null);
    assert.deepEqual(r.details, { empty: true });
    const v2 = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups/verify`, {});
    assert.equal(v2.statusCode, 404, 'nothing to drill');
  });

  test('a repository that vanished fails loudly: recorded, audited, counted, logged', async () => {
    const org = (await store.orgs.findByName('acme'))!;
    const target = (await store.backups.getTarget(org.id))!;
    const v = await newVolume();
    await fill(v, { a: 'a' });
    ok(await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups`), 'first backup');
    const before = await metric('ward_backup_failures_total', 'kind="backup"');
    await rm(target.repository, { recursive: true, force: true });
    try {
      const r = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups`);
      assert.equal(r.statusCode, 502, r.body);
      assert.equal(body(r).error.code, 'backup_failed');
      const runs = body(await call('GET', `/v1/apps/${appName}/backups?volume=${v.name}`)).runs;
      assert.equal(runs[0].status, 'failed');
      assert.match(runs[0].error, /no restic repository|exited/);
      assert.equal(runs[0].snapshot_id, null);
      assert.equal(await metric('ward_backup_failures_total', 'kind="backup"'), before + 1);
      const audit = await store.audit.list({ orgId: org.id });
      const last = audit.filter((e) => e.action === 'backup.backup').at(-1)!;
      assert.equal(last.outcome, 'failure');
      assert.equal(last.details.run_id, runs[0].id);
      assert.ok(logLines.some((l) => l.includes('backup backup FAILED') && l.includes(runs[0].id)));
    } finally {
      // Put a fresh repository back for the next tests (the same key initializes it).
      ok(await call('PUT', '/v1/orgs/acme/backups/target', { repository: target.repository }), 'reset target');
    }
  });

  test('a REST target with a password in its URL: it works, and the password is shown, logged and stored nowhere', async () => {
    const port = await freePort();
    const pw = `restpw${randomBytes(8).toString('hex')}`;
    const server = start(['rclone', 'serve', 'restic', '--addr', `127.0.0.1:${port}`, '--user', 'ward', '--pass', pw, join(dir, 'rest-store')], { stdio: ['ignore', 'ignore', 'ignore'] });
    try {
      await waitForPort(port);
      const set = await call('PUT', '/v1/orgs/acme/backups/target', { repository: `rest:http://ward:${pw}@127.0.0.1:${port}/acme/` });
      assert.equal(set.statusCode, 200, set.body);
      assert.equal(body(set).target.repository, `rest:http://ward:***@127.0.0.1:${port}/acme/`);
      const v = await newVolume();
      await fill(v, { a: randomBytes(10_000) });
      const r = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups`);
      assert.equal(r.statusCode, 201, r.body);
      const scan = await scanFiles([dir], [Buffer.from(pw)], { skip: [join(dir, 'volumes')] });
      assert.deepEqual(scan.hits[0], [], 'the URL\'s password is in no file (the database holds it sealed)');
      assert.ok(!logLines.some((l) => l.includes(pw)), 'nor in a log line');
      const org = (await store.orgs.findByName('acme'))!;
      assert.ok(!(await store.audit.list({ orgId: org.id })).some((e) => JSON.stringify(e).includes(pw)), 'nor in the audit log');
    } finally {
      server.kill('SIGKILL');
      await new Promise((res) => (server.exitCode !== null || server.signalCode !== null ? res(undefined) : server.once('exit', res)));
      ok(await call('PUT', '/v1/orgs/acme/backups/target', { repository: join(dir, 'repo') }), 'back to the local target');
    }
  });

  test('a repository made with another key is refused and nothing changes', async () => {
    const other = new ResticEngine();
    const foreign = join(dir, 'foreign-repo');
    await other.open({ repository: foreign, password: Buffer.from('someone else') });
    const org = (await store.orgs.findByName('acme'))!;
    const before = await store.backups.getTarget(org.id);
    const r = await call('PUT', '/v1/orgs/acme/backups/target', { repository: foreign });
    assert.equal(r.statusCode, 502, r.body);
    assert.equal(body(r).error.code, 'backup_failed');
    assert.match(body(r).error.message, /another key/);
    assert.deepEqual(await store.backups.getTarget(org.id), before);
  });

  test('restore: refused under a running instance, byte-identical otherwise, and --force restores anyway', async () => {
    const v = await newVolume();
    const src = await fill(v, { 'pg/base/1': randomBytes(1_000_000), 'pg/PG_VERSION': '16\n' });
    const want = await treeDigestOf(src);
    const b = body(await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups`)).run;
    await writeFile(join(src, 'pg/base/1'), 'corrupted by a bad migration');
    await writeFile(join(src, 'junk'), 'x');

    const dev = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups/restore`, {}, devToken);
    assert.equal(dev.statusCode, 403, 'restoring overwrites data: not for developers');
    volumes.using.set(v.id, ['ins_00000000000000000000000001']);
    const refused = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups/restore`, {});
    assert.equal(refused.statusCode, 409, refused.body);
    assert.equal(body(refused).error.code, 'restore_refused');
    assert.equal(await readFile(join(src, 'junk'), 'utf8'), 'x', 'nothing changed');
    const forced = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups/restore`, { force: true, snapshot: b.snapshot_id.slice(0, 8) });
    assert.equal(forced.statusCode, 200, forced.body);
    assert.equal(body(forced).run.details.forced, true);
    volumes.using.delete(v.id);
    assert.deepEqual(await treeDigestOf(src), want);

    await writeFile(join(src, 'later'), 'y');
    const plain = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups/restore`, {});
    assert.equal(body(plain).run.status, 'succeeded');
    assert.deepEqual(await treeDigestOf(src), want);
    const kinds = body(await call('GET', `/v1/apps/${appName}/backups?volume=${v.name}`)).runs.map((r: any) => `${r.kind}:${r.status}`);
    assert.deepEqual(kinds, ['restore:succeeded', 'restore:succeeded', 'backup:succeeded']);
  });

  test('verify drills a restore and records its duration; a flipped byte in a pack makes it fail, recorded', async () => {
    const v = await newVolume();
    await fill(v, { 'big.bin': randomBytes(1_500_000) });
    ok(await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups`), 'backup');
    const good = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups/verify`, {}, devToken);
    assert.equal(good.statusCode, 200, good.body);
    const d = body(good).run;
    assert.equal(d.kind, 'drill');
    assert.equal(d.status, 'succeeded');
    assert.equal(d.files, 1);
    assert.equal(typeof d.duration_ms, 'number');
    assert.match(d.details.tree_sha256, /^[0-9a-f]{64}$/);
    assert.equal(d.details.subset, '100%');
    assert.deepEqual(await readdir(join(dir, 'scratch')), [], 'scratch emptied');

    const org = (await store.orgs.findByName('acme'))!;
    const repo = (await store.backups.getTarget(org.id))!.repository;
    const packs: Array<{ p: string; size: number }> = [];
    for (const sub of await readdir(join(repo, 'data'))) {
      for (const f of await readdir(join(repo, 'data', sub))) packs.push({ p: join(repo, 'data', sub, f), size: (await stat(join(repo, 'data', sub, f))).size });
    }
    const biggest = packs.sort((a, b) => b.size - a.size)[0]!;
    const fh = await open(biggest.p, 'r+');
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, Math.floor(biggest.size / 2));
    await fh.write(Buffer.from([byte[0]! ^ 0x01]), 0, 1, Math.floor(biggest.size / 2));
    await fh.close();
    const before = await metric('ward_backup_failures_total', 'kind="drill"');
    const bad = await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups/verify`, {});
    assert.equal(bad.statusCode, 502, bad.body);
    const runs = body(await call('GET', `/v1/apps/${appName}/backups?volume=${v.name}`)).runs;
    assert.equal(runs[0].kind, 'drill');
    assert.equal(runs[0].status, 'failed');
    assert.ok(runs[0].details.problems.length > 0);
    assert.equal(await metric('ward_backup_failures_total', 'kind="drill"'), before + 1);
    // Leave a sound repository for the tests after this one.
    ok(await call('PUT', '/v1/orgs/acme/backups/target', { repository: join(dir, 'repo-after-corruption') }), 'new target');
  });

  test('a mount\'s backup_command runs in the instance first; one that fails fails the backup', async () => {
    const app = uniq('app');
    ok(await call('POST', '/v1/apps', { name: app, org: 'acme' }), 'create app');
    const v = await newVolume(app);
    const up = await api.inject({ method: 'POST', url: `/v1/apps/${app}/images?format=oci-archive`, payload: archive, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' } });
    ok(up, 'upload');
    const dep = await call('POST', `/v1/apps/${app}/deploy`, { image: body(up).image.digest, config: { app, mounts: [{ source: v.name, destination: '/data', backup_command: 'pg_dump -Fc -f /data/dump' }] } });
    ok(dep, 'deploy');
    const a = (await store.apps.findByName(app))!;
    const [ins] = await store.instances.listForApp(a.id);
    assert.ok(ins, 'an instance was placed');
    volumes.using.set(v.id, [ins.id]);
    volumes.onExec = async (d) => {
      await writeFile(join(d, 'dump'), 'a consistent dump');
      return { code: 0, stdout: '', stderr: '' };
    };
    try {
      const r = body(await call('POST', `/v1/apps/${app}/volumes/${v.name}/backups`)).run;
      assert.equal(r.status, 'succeeded');
      assert.equal(r.consistency, 'command');
      assert.deepEqual(volumes.execs.at(-1), { instanceId: ins.id, argv: ['/bin/sh', '-c', 'pg_dump -Fc -f /data/dump'] });
      const drill = body(await call('POST', `/v1/apps/${app}/volumes/${v.name}/backups/verify`, {})).run;
      assert.equal(drill.files, 1, 'the dump is in the snapshot');

      volumes.onExec = async () => ({ code: 1, stdout: '', stderr: 'pg_dump: error: connection refused' });
      const f = await call('POST', `/v1/apps/${app}/volumes/${v.name}/backups`);
      assert.equal(f.statusCode, 502, f.body);
      assert.match(body(f).error.message, /backup_command .* exited with 1.*connection refused/);
    } finally {
      volumes.using.delete(v.id);
      volumes.onExec = async () => ({ code: 0, stdout: '', stderr: '' });
    }
  });

  test('policies: defaults, bad cron refused, set; retention is applied after each backup', async () => {
    const v = await newVolume();
    const shown = body(await call('GET', `/v1/apps/${appName}/volumes/${v.name}/backups/policy`, undefined, devToken)).policy;
    assert.deepEqual(shown, { volume: v.name, schedule: '0 3 * * *', retention: { daily: 7, weekly: 4, monthly: 12, yearly: 6 }, next_run_at: null });
    const bad = await call('PUT', `/v1/apps/${appName}/volumes/${v.name}/backups/policy`, { schedule: '61 * * * *' });
    assert.equal(bad.statusCode, 400);
    assert.match(body(bad).error.message, /minute/);
    const none = await call('PUT', `/v1/apps/${appName}/volumes/${v.name}/backups/policy`, { keep_daily: 0, keep_weekly: 0, keep_monthly: 0, keep_yearly: 0 });
    assert.equal(none.statusCode, 400);
    const set = body(await call('PUT', `/v1/apps/${appName}/volumes/${v.name}/backups/policy`, { schedule: '30 2 * * *', keep_daily: 1, keep_weekly: 0, keep_monthly: 0, keep_yearly: 0 }, devToken)).policy;
    assert.equal(set.schedule, '30 2 * * *');
    assert.equal(set.next_run_at, '2026-11-30T02:30:00.000Z');
    await fill(v, { f: '1' });
    const first = body(await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups`)).run;
    await fill(v, { f: '2' });
    const second = body(await call('POST', `/v1/apps/${appName}/volumes/${v.name}/backups`)).run;
    assert.deepEqual(second.details.retention, { kept: 1, removed: 1, runs_marked: 1 });
    const runs = body(await call('GET', `/v1/apps/${appName}/backups?volume=${v.name}`)).runs;
    assert.equal(runs.find((r: any) => r.id === first.id).pruned_at !== null, true, 'the pruned snapshot says so');
    assert.equal(runs.find((r: any) => r.id === second.id).pruned_at, null);
  });

  test('the scheduler: due backups run once, times survive a restart, the weekly drill runs, dead runs are failed', async () => {
    const v = await newVolume();
    await fill(v, { f: 'scheduled' });
    const org = (await store.orgs.findByName('acme'))!;
    const svc = api.backups;
    // First sight: the volume gets the default policy, due tomorrow at 03:00.
    const t0 = await svc.tick();
    const pol = (await store.backups.getPolicy(v.id))!;
    assert.equal(pol.nextRunAt, '2026-11-30T03:00:00.000Z');
    assert.equal(t0.drills, 0);
    clock.set(Date.parse('2026-11-30T03:00:30Z'));
    const ran = await svc.tick();
    assert.ok(ran.backups >= 1);
    const mine = (await store.backups.listRuns(org.id, { volumeId: v.id })).filter((r) => r.trigger === 'schedule');
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.status, 'succeeded');
    assert.equal((await store.backups.getPolicy(v.id))!.nextRunAt, '2026-12-01T03:00:00.000Z');
    await svc.tick();
    assert.equal((await store.backups.listRuns(org.id, { volumeId: v.id })).filter((r) => r.trigger === 'schedule').length, 1, 'not twice');

    // A restarted server (a new API on the same database) reads the same next times: nothing is due.
    const restarted = await buildApi({ store, clock, keys, logger: newLogger('silent'), version: '0.0.0-test', backups: { host: () => volumes, scratch: directoryScratch(join(dir, 'scratch')) } });
    try {
      // A run a dead process left 'running' is failed at the next start, loudly.
      await store.backups.createRun({ ...mine[0]!, id: 'bkr_00000000000000000000000009', status: 'running', finishedAt: null, trigger: 'manual', startedAt: toTimestamp(new Date(clock.now().getTime() - 60_000)) });
      assert.equal(await restarted.backups.recover(), 1);
      assert.equal((await restarted.backups.tick()).backups, 0);
    } finally {
      await restarted.close();
    }
    const dead = (await store.backups.getRun('bkr_00000000000000000000000009'))!;
    assert.equal(dead.status, 'failed');
    assert.match(dead.error ?? '', /interrupted/);

    // The weekly drill: due a week after the target was set.
    clock.set(Date.parse((await store.backups.getTarget(org.id))!.nextDrillAt) + 1000);
    const drilled = await svc.tick();
    assert.ok(drilled.drills >= 1);
    const drill = (await store.backups.listRuns(org.id, { volumeId: v.id, kinds: ['drill'] }))[0]!;
    assert.equal(drill.trigger, 'schedule');
    assert.equal(drill.status, 'succeeded', drill.error ?? '');
    assert.ok(Date.parse((await store.backups.getTarget(org.id))!.nextDrillAt) > clock.now().getTime() + 6 * 86_400_000);
  });
});

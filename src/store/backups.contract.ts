import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { newId } from '../core/index.ts';
import { aUser, rejectsConflict, type StoreFactory } from './store.contract.ts';
import { seedOrgAppHost } from './runtime.contract.ts';
import { aVolume } from './volumes.contract.ts';
import type { BackupPolicyRecord, BackupRunRecord, BackupTargetRecord, Store, VolumeRecord } from './types.ts';

const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-01T10:05:00.123Z';
const T2 = '2026-03-02T10:00:00.000Z';

function aTarget(orgId: string, over: Partial<BackupTargetRecord> = {}): BackupTargetRecord {
  return { orgId, repository: '/srv/backups/acme', passwordSealed: 'v1.sealed', nextDrillAt: T2, createdBy: null, createdAt: T0, updatedAt: T0, ...over };
}

function aPolicy(orgId: string, volumeId: string, over: Partial<BackupPolicyRecord> = {}): BackupPolicyRecord {
  return { volumeId, orgId, schedule: '@daily', keepDaily: 7, keepWeekly: 4, keepMonthly: 12, keepYearly: 6, nextRunAt: T2, updatedAt: T0, ...over };
}

function aRun(orgId: string, volumeId: string, over: Partial<BackupRunRecord> = {}): BackupRunRecord {
  return {
    id: newId('backupRun'),
    orgId,
    appId: null,
    volumeId,
    volumeName: 'pgdata',
    kind: 'backup',
    trigger: 'manual',
    status: 'running',
    snapshotId: null,
    consistency: null,
    files: null,
    bytes: null,
    durationMs: null,
    error: null,
    details: null,
    requestedBy: null,
    startedAt: T0,
    finishedAt: null,
    prunedAt: null,
    ...over,
  };
}

/** runBackupsContract runs the contract of the backups repo (issue "Volumes", backups) against one Store implementation. */
export function runBackupsContract(name: string, makeStore: StoreFactory): void {
  describe(`Backups store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let orgId: string;
    let appId: string;
    let volume: VolumeRecord;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      const { org, app, host } = await seedOrgAppHost(store);
      orgId = org.id;
      appId = app.id;
      volume = aVolume(orgId, appId, host.id, 'pgdata', { sizeBytes: 1024 ** 3, wrappedKey: 'k1.w' });
      await store.volumes.create(volume);
    });
    afterEach(async () => {
      await cleanup();
    });

    test('targets: none, put, replace, next drill, list', async () => {
      const user = aUser();
      await store.users.create(user);
      assert.equal(await store.backups.getTarget(orgId), undefined);
      assert.equal(await store.backups.setNextDrill(orgId, T1), false);
      await store.backups.putTarget(aTarget(orgId, { createdBy: user.id }));
      await store.backups.putTarget(aTarget(orgId, { repository: 'rest:https://backup.example.com/acme/', passwordSealed: 'v1.other', createdBy: user.id, updatedAt: T1 }));
      assert.equal(await store.backups.setNextDrill(orgId, T1), true);
      assert.deepEqual(await store.backups.getTarget(orgId), aTarget(orgId, { repository: 'rest:https://backup.example.com/acme/', passwordSealed: 'v1.other', createdBy: user.id, updatedAt: T1, nextDrillAt: T1 }));
      assert.deepEqual((await store.backups.listTargets()).map((t) => t.orgId), [orgId]);
    });

    test('policies: put, replace, list by next run, move the next run; they go with their volume', async () => {
      assert.equal(await store.backups.getPolicy(volume.id), undefined);
      assert.equal(await store.backups.setNextRun(volume.id, T1), false);
      await store.backups.putPolicy(aPolicy(orgId, volume.id));
      await store.backups.putPolicy(aPolicy(orgId, volume.id, { schedule: '30 2 * * *', keepDaily: 3, keepYearly: 0, updatedAt: T1 }));
      assert.equal(await store.backups.setNextRun(volume.id, T1), true);
      assert.deepEqual(await store.backups.getPolicy(volume.id), aPolicy(orgId, volume.id, { schedule: '30 2 * * *', keepDaily: 3, keepYearly: 0, updatedAt: T1, nextRunAt: T1 }));
      assert.equal((await store.backups.listPolicies(orgId)).length, 1);
      assert.equal((await store.backups.listPolicies()).length, 1);
      assert.deepEqual(await store.backups.listPolicies(newId('org')), []);
      await store.volumes.remove(volume.id);
      assert.equal(await store.backups.getPolicy(volume.id), undefined);
    });

    test('runs: create once, finish once, list newest first, last snapshot, pruning', async () => {
      const a = aRun(orgId, volume.id, { startedAt: T0 });
      await store.backups.createRun(a);
      await rejectsConflict(store.backups.createRun(a), 'backup_runs.id');
      assert.equal(await store.backups.finishRun(a.id, { status: 'succeeded', finishedAt: T1, durationMs: 1234, snapshotId: 'aa11', consistency: 'live', files: 3, bytes: 5 * 1024 ** 3, details: { summary: { files_new: 3 } } }), true);
      assert.equal(await store.backups.finishRun(a.id, { status: 'failed', finishedAt: T1, durationMs: 1, error: 'late' }), false, 'a finished run stays as it ended');
      const b = aRun(orgId, volume.id, { startedAt: T1, appId, trigger: 'schedule' });
      await store.backups.createRun(b);
      await store.backups.finishRun(b.id, { status: 'failed', finishedAt: T2, durationMs: 10, error: 'restic exited with 1' });
      const d = aRun(orgId, volume.id, { startedAt: T2, kind: 'drill', snapshotId: 'aa11' });
      await store.backups.createRun(d);
      const got = await store.backups.getRun(a.id);
      assert.deepEqual(got, { ...a, status: 'succeeded', finishedAt: T1, durationMs: 1234, snapshotId: 'aa11', consistency: 'live', files: 3, bytes: 5 * 1024 ** 3, details: { summary: { files_new: 3 } } });
      assert.deepEqual((await store.backups.listRuns(orgId)).map((r) => r.id), [d.id, b.id, a.id]);
      assert.deepEqual((await store.backups.listRuns(orgId, { kinds: ['backup'], limit: 1 })).map((r) => r.id), [b.id]);
      assert.deepEqual((await store.backups.listRuns(orgId, { volumeId: newId('volume') })), []);
      assert.equal((await store.backups.getRun(b.id))?.error, 'restic exited with 1');
      assert.equal((await store.backups.lastSnapshot(volume.id))?.id, a.id, 'the failed backup has no snapshot');
      assert.equal(await store.backups.markPruned(volume.id, ['aa11', 'zz99'], T2), 1);
      assert.equal(await store.backups.markPruned(volume.id, ['aa11'], T2), 0);
      assert.equal(await store.backups.lastSnapshot(volume.id), undefined);
      assert.equal((await store.backups.getRun(a.id))?.prunedAt, T2);
      // Runs outlive the volume (the snapshots do too).
      await store.volumes.remove(volume.id);
      assert.equal((await store.backups.listRuns(orgId)).length, 3);
    });

    test('runs a dead process left running are failed on the next start', async () => {
      const old = aRun(orgId, volume.id, { startedAt: T0 });
      const fresh = aRun(orgId, volume.id, { startedAt: T2 });
      const done = aRun(orgId, volume.id, { startedAt: T0, status: 'succeeded', finishedAt: T0, durationMs: 1 });
      for (const r of [old, fresh, done]) await store.backups.createRun(r);
      const failed = await store.backups.failInterrupted(T1, T1, 'interrupted');
      assert.deepEqual(failed.map((r) => [r.id, r.status, r.error, r.finishedAt]), [[old.id, 'failed', 'interrupted', T1]]);
      assert.equal((await store.backups.getRun(fresh.id))?.status, 'running');
      assert.equal((await store.backups.getRun(done.id))?.status, 'succeeded');
      const other = aRun(orgId, volume.id, { startedAt: T0 });
      await store.backups.createRun(other);
      assert.deepEqual(await store.backups.failInterrupted(T2, T2, 'x', []), [], 'an empty volume list fails nothing');
      assert.deepEqual(await store.backups.failInterrupted(T2, T2, 'x', [newId('volume')]), []);
      assert.deepEqual((await store.backups.failInterrupted(T1, T2, 'x', [volume.id])).map((r) => r.id), [other.id]);
    });

    test('a transaction that fails leaves no run or target behind', async () => {
      await assert.rejects(store.transaction(async (tx) => {
        await tx.backups.putTarget(aTarget(orgId));
        await tx.backups.createRun(aRun(orgId, volume.id));
        throw new Error('boom');
      }), /boom/);
      assert.equal(await store.backups.getTarget(orgId), undefined);
      assert.deepEqual(await store.backups.listRuns(orgId), []);
    });
  });
}

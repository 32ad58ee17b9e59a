import { after, afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, UserError } from '../core/index.ts';
import { SqliteStore, type Store } from '../store/index.ts';
import { generateAuditKey, publicKeyFromPem, type AuditKey } from './chain.ts';
import { csvCell, verifyExport } from './export.ts';
import { auditKeyPath, loadOrCreateAuditKey } from './keyfile.ts';
import { AuditService, SERVER_CHAIN } from './service.ts';
import type { CallContext } from './types.ts';

const CTX: CallContext = { actor: { type: 'user', id: 'usr_1', label: 'ann@example.com' }, sourceIp: '192.0.2.1', requestId: 'req_1' };

async function collect(gen: AsyncIterable<string>): Promise<string> {
  let s = '';
  for await (const x of gen) s += x;
  return s;
}

describe('AuditService', () => {
  let store: Store;
  let key: AuditKey;
  let clock: ManualClock;
  let audit: AuditService;

  beforeEach(async () => {
    store = await SqliteStore.open({ file: ':memory:' });
    key = generateAuditKey();
    clock = new ManualClock(Date.UTC(2026, 5, 1));
    audit = new AuditService({ store, clock, key, checkpointEvery: 5 });
    await audit.init();
  });
  afterEach(async () => {
    await audit.close();
    await store.close();
  });

  test('record chains entries per org, with the caller and event fields; _server for no org', async () => {
    const a = await audit.record(store, CTX, { orgId: 'org_a', action: 'app.create', target: 'app_1', outcome: 'success', details: { name: 'web' } });
    clock.advance(1000);
    const b = await audit.record(store, CTX, { orgId: 'org_a', action: 'app.destroy', target: 'app_1', outcome: 'success' });
    const s = await audit.record(store, { ...CTX, actor: { type: 'anonymous', id: null, label: null } }, { orgId: null, action: 'auth.login', outcome: 'failure' });
    assert.deepEqual([a.seq, b.seq, s.seq], [1, 2, 1]);
    assert.equal(b.prev_hash, a.hash);
    assert.equal(s.chain, SERVER_CHAIN);
    assert.deepEqual(await store.audit.entries('org_a'), [a, b]);
    assert.equal(a.actor_label, 'ann@example.com');
    assert.equal(a.source_ip, '192.0.2.1');
    assert.equal(a.request_id, 'req_1');
    assert.equal(b.at, '2026-06-01T00:00:01.000Z');
    assert.deepEqual(b.details, {});
    assert.deepEqual(await store.audit.keys().then((k) => k.map((x) => x.keyId)), [key.keyId]);
    const v = await audit.verify(store);
    assert.ok(v.ok, JSON.stringify(v.problems));
    assert.deepEqual(v.keyIds, [key.keyId]);
  });

  test('a checkpoint is signed at every Nth entry, in the entry\'s transaction', async () => {
    for (let i = 0; i < 11; i++) await audit.record(store, CTX, { orgId: 'org_a', action: 'x.y', outcome: 'success' });
    assert.deepEqual((await store.audit.checkpoints('org_a')).map((c) => c.seq), [5, 10]);
    // The 15th entry's transaction fails after the entry: neither it nor its checkpoint remains.
    for (let i = 0; i < 3; i++) await audit.record(store, CTX, { orgId: 'org_a', action: 'x.y', outcome: 'success' });
    await assert.rejects(
      store.transaction(async (tx) => {
        await audit.record(tx, CTX, { orgId: 'org_a', action: 'x.y', outcome: 'success' });
        throw new Error('the change failed');
      }),
      /the change failed/,
    );
    assert.equal((await store.audit.head('org_a'))!.seq, 14);
    assert.deepEqual((await store.audit.checkpoints('org_a')).map((c) => c.seq), [5, 10]);
  });

  test('checkpoint() signs the heads of chains with new entries, once; close() signs the rest', async () => {
    await audit.record(store, CTX, { orgId: 'org_a', action: 'x.y', outcome: 'success' });
    await audit.record(store, CTX, { orgId: 'org_b', action: 'x.y', outcome: 'success' });
    const made = await audit.checkpoint();
    assert.deepEqual(made.map((c) => [c.chain, c.seq]).sort(), [['org_a', 1], ['org_b', 1]]);
    assert.deepEqual(await audit.checkpoint(), [], 'nothing new');
    assert.deepEqual(await audit.checkpoint(['org_a']), [], 'a head already checkpointed is skipped');
    await audit.record(store, CTX, { orgId: 'org_a', action: 'x.y', outcome: 'success' });
    await audit.close();
    assert.deepEqual((await store.audit.checkpoints('org_a')).map((c) => c.seq), [1, 2]);
  });

  test('the timer checkpoints in the background and does not keep the process alive', async () => {
    const fast = new AuditService({ store, clock, key, checkpointIntervalMs: 20 });
    await fast.record(store, CTX, { orgId: 'org_t', action: 'x.y', outcome: 'success' });
    fast.start();
    for (let i = 0; i < 100 && (await store.audit.checkpoints('org_t')).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual((await store.audit.checkpoints('org_t')).map((c) => c.seq), [1]);
    await fast.close();
    await fast.close();
  });

  test('start() signs heads a previous run left unsigned', async () => {
    await audit.record(store, CTX, { orgId: 'org_a', action: 'x.y', outcome: 'success' });
    const next = new AuditService({ store, clock, key: generateAuditKey() });
    next.start();
    await next.close();
    const cps = await store.audit.checkpoints('org_a');
    assert.deepEqual(cps.map((c) => [c.seq, c.key_id]), [[1, next.keyId]]);
    assert.ok((await audit.verify(store)).ok, 'a second replica\'s key is registered and trusted');
  });

  test('details must not carry credentials: the record (and so the change) fails', async () => {
    for (const details of [{ password: 'hunter2' }, { nested: [{ Token: 'x' }] }, { note: `leaked ward_ses_${'A'.repeat(43)}` }, { code: '123456' }]) {
      await assert.rejects(audit.record(store, CTX, { orgId: 'org_a', action: 'x.y', outcome: 'success', details }), /must not/);
    }
    assert.equal(await store.audit.head('org_a'), undefined);
  });

  test('details round-trip as plain JSON and still verify', async () => {
    await audit.record(store, CTX, { orgId: 'org_a', action: 'x.y', outcome: 'success', details: { when: new Date(0), skip: undefined, list: [1, 'a'], s: 'quote " comma , newline \n' } });
    const [e] = await store.audit.entries('org_a');
    assert.deepEqual(e!.details, { when: '1970-01-01T00:00:00.000Z', list: [1, 'a'], s: 'quote " comma , newline \n' });
    assert.ok((await audit.verify(store)).ok);
  });

  test('verify finds edits in the store and names the entry', async () => {
    for (let i = 0; i < 3; i++) await audit.record(store, CTX, { orgId: 'org_a', action: 'x.y', outcome: 'success' });
    const [e1, e2, e3] = await store.audit.entries('org_a');
    // A copy of the log with entry 2 edited, in a store of its own.
    const copy = await SqliteStore.open({ file: ':memory:' });
    try {
      for (const e of [e1!, { ...e2!, actor_label: 'mallory@example.com' }, e3!]) await copy.audit.append(e);
      for (const k of await store.audit.keys()) await copy.audit.addKey(k);
      const v = await audit.verify(copy, { orgId: 'org_a' });
      assert.equal(v.ok, false);
      assert.deepEqual(v.problems.map((p) => [p.chain, p.seq, p.id]), [['org_a', 2, e2!.id]]);
    } finally {
      await copy.close();
    }
  });

  test('a JSONL export verifies offline; any edited line fails it, naming the line; CSV is for spreadsheets', async () => {
    for (let i = 0; i < 7; i++) await audit.record(store, CTX, { orgId: i % 2 ? 'org_a' : 'org_b', action: 'app.create', outcome: 'success', details: { name: `app-${i}` } });
    await audit.checkpoint();
    const text = await collect(audit.export(store, { format: 'jsonl' }));
    const lines = text.trimEnd().split('\n');
    const header = JSON.parse(lines[0]!);
    assert.equal(header.format, 'ward-audit-export/1');
    assert.deepEqual(header.public_keys.map((k: { key_id: string }) => k.key_id), [key.keyId]);
    assert.equal(lines.filter((l) => l.includes('"type":"entry"')).length, 7);
    const ok = verifyExport(text);
    assert.ok(ok.ok, JSON.stringify(ok.problems));
    assert.equal(ok.keysFrom, 'file');
    assert.deepEqual(ok.ranges.map((r) => [r.chain, r.first_seq, r.last_seq, r.signed_seq]), [['org_a', 1, 3, 3], ['org_b', 1, 4, 4]]);

    const edited = lines.map((l) => l.replace('"app-3"', '"app-9"')).join('\n');
    const bad = verifyExport(edited);
    assert.equal(bad.ok, false);
    assert.equal(bad.problems[0]!.chain, 'org_a');
    assert.equal(bad.problems[0]!.seq, 2);
    assert.equal(bad.problems[0]!.line, lines.findIndex((l) => l.includes('"app-3"')) + 1);

    const broken = [...lines.slice(0, 3), '{not json', ...lines.slice(4)].join('\n');
    assert.match(verifyExport(broken).problems[0]!.reason, /line 4: not valid JSON/);
    assert.equal(verifyExport(lines.slice(1).join('\n')).ok, false, 'no header');
    assert.equal(verifyExport('').ok, false, 'empty');

    // Trusted keys: an export re-signed by someone else's key fails when the auditor pins the real key.
    const other = generateAuditKey();
    const pinned = verifyExport(text, { trustedKeys: [other.publicKey] });
    assert.equal(pinned.ok, false);
    assert.match(pinned.problems[0]!.reason, /not among the trusted public keys/);
    assert.ok(verifyExport(text, { trustedKeys: [publicKeyFromPem(audit.publicKeyPem)] }).ok);

    const csv = await collect(audit.export(store, { format: 'csv' }));
    const rows = csv.trimEnd().split('\r\n');
    assert.equal(rows[0], 'chain,seq,id,at,org_id,actor_type,actor_id,actor_label,action,target,outcome,source_ip,request_id,details,prev_hash,hash');
    assert.equal(rows.length, 8);
    assert.match(rows[1]!, /^org_a,1,aud_/);
  });

  test('an export since a time holds the rest of each chain and verifies as partial', async () => {
    for (let i = 0; i < 6; i++) {
      await audit.record(store, CTX, { orgId: 'org_a', action: 'x.y', outcome: 'success' });
      clock.advance(60_000);
    }
    const since = '2026-06-01T00:03:00.000Z';
    const text = await collect(audit.export(store, { format: 'jsonl', since }));
    const r = verifyExport(text);
    assert.ok(r.ok, JSON.stringify(r.problems));
    assert.deepEqual(r.ranges, [{ chain: 'org_a', first_seq: 4, last_seq: 6, signed_seq: 5 }]);
    // A partial export with its first entry removed still says where it starts; one without `since` in the
    // header must start at 1.
    const lines = text.trimEnd().split('\n');
    assert.equal(verifyExport([lines[0]!.replace(`"since":"${since}"`, '"since":null'), ...lines.slice(1)].join('\n')).ok, false);
  });

  test('csvCell quotes and defuses formulas', () => {
    assert.equal(csvCell('plain'), 'plain');
    assert.equal(csvCell(null), '');
    assert.equal(csvCell(7), '7');
    assert.equal(csvCell('a,b'), '"a,b"');
    assert.equal(csvCell('say "hi"'), '"say ""hi"""');
    assert.equal(csvCell('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
    assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvCell({ a: 1 }), '"{""a"":1}"');
  });
});

describe('audit signing key file', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  async function freshDir(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'ward-audit-key-'));
    dirs.push(d);
    return d;
  }

  test('is created 0600 under the data dir and read back the same', async () => {
    const dir = join(await freshDir(), 'nested', 'data');
    const file = auditKeyPath(dir);
    const first = await loadOrCreateAuditKey(file);
    assert.equal(first.created, true);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.match(await readFile(file, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    const again = await loadOrCreateAuditKey(file);
    assert.equal(again.created, false);
    assert.equal(again.key.keyId, first.key.keyId);
  });

  test('concurrent starts on one data dir end up with one key', async () => {
    const file = auditKeyPath(await freshDir());
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateAuditKey(file)));
    assert.equal(new Set(keys.map((k) => k.key.keyId)).size, 1);
    assert.equal(keys.filter((k) => k.created).length, 1);
  });

  test('a key others may read, or that is not an Ed25519 key, is refused', async () => {
    const file = auditKeyPath(await freshDir());
    await loadOrCreateAuditKey(file);
    await chmod(file, 0o644);
    await assert.rejects(loadOrCreateAuditKey(file), (e: unknown) => e instanceof UserError && e.code === 'data_dir' && /may be read by other users/.test(e.message) && /chmod 600/.test(e.hint ?? ''));
    await writeFile(file, 'not a key', { mode: 0o600 });
    await chmod(file, 0o600);
    await assert.rejects(loadOrCreateAuditKey(file), (e: unknown) => e instanceof UserError && e.code === 'data_dir' && /not an Ed25519 private key/.test(e.message));
  });
});

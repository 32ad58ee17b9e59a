import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson } from './canonical.ts';
import { generateAuditKey, sealEntry, signCheckpoint, verifyAudit, type AuditRecord } from './chain.ts';

function makeChain(n: number, chain = 'org_a'): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (let i = 0; i < n; i++) {
    const prev = out[out.length - 1];
    out.push(sealEntry({
      chain, id: `aud_${i}`, at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), org_id: chain,
      actor_type: 'user', actor_id: 'usr_1', actor_label: 'ann@example.com', action: 'app.create', target: `app:app_${i}`,
      outcome: 'success', source_ip: '127.0.0.1', request_id: `req_${i}`, details: { name: `app-${i}`, n: i },
    }, prev));
  }
  return out;
}

test('canonical JSON sorts keys at every depth and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: null, y: 'x' }], c: true }, u: undefined }), '{"a":{"c":true,"d":[1,{"y":"x","z":null}]},"b":1}');
  assert.throws(() => canonicalJson({ x: NaN }));
});

test('an untouched log verifies; every single edit, deletion, insertion or reordering is caught and named', () => {
  const key = generateAuditKey();
  const entries = makeChain(10);
  const cps = [signCheckpoint(key, entries[9]!, '2026-01-01T01:00:00.000Z')];
  assert.deepEqual(verifyAudit(entries, cps, key.publicKey).problems, []);

  const tamper: Array<[string, (e: AuditRecord[]) => AuditRecord[], number]> = [
    ['edit a field', (e) => e.map((x) => (x.seq === 4 ? { ...x, actor_label: 'mallory@example.com' } : x)), 4],
    ['edit details', (e) => e.map((x) => (x.seq === 7 ? { ...x, details: { ...x.details, n: 99 } } : x)), 7],
    ['edit and rehash one entry', (e) => e.map((x) => (x.seq === 5 ? sealEntry({ ...x, outcome: 'failure' }, e[3]) : x)), 6],
    ['delete a middle entry', (e) => e.filter((x) => x.seq !== 3), 3],
    ['delete the newest entries', (e) => e.filter((x) => x.seq <= 8), 10],
    ['swap two entries', (e) => e.map((x) => (x.seq === 2 ? { ...e[2]!, seq: 2 } : x.seq === 3 ? { ...e[1]!, seq: 3 } : x)), 2],
    ['insert a forged entry', (e) => [...e.slice(0, 5), sealEntry({ ...e[5]!, action: 'secret.read' }, e[4]), ...e.slice(5).map((x) => ({ ...x, seq: x.seq + 1 }))], 7],
  ];
  for (const [name, f, seq] of tamper) {
    const r = verifyAudit(f(structuredClone(entries)), cps, key.publicKey);
    assert.equal(r.ok, false, name);
    assert.equal(r.problems[0]!.seq, seq, `${name}: ${JSON.stringify(r.problems)}`);
  }
});

test('checkpoints: a forged signature or another key is refused; chains verify independently', () => {
  const key = generateAuditKey();
  const other = generateAuditKey();
  const a = makeChain(3, 'org_a');
  const b = makeChain(2, 'org_b');
  const good = signCheckpoint(key, a[2]!, '2026-01-01T00:00:00.000Z');
  assert.ok(verifyAudit([...a, ...b], [good], key.publicKey).ok);
  assert.ok(!verifyAudit(a, [{ ...good, seq: 2, hash: a[1]!.hash }], key.publicKey).ok, 'moved checkpoint');
  assert.ok(!verifyAudit(a, [signCheckpoint(other, a[2]!, good.at)], key.publicKey).ok, 'signed by another key');
  // Rewriting the whole chain consistently is caught by the signed checkpoint.
  const rewritten = makeChain(3, 'org_a').map((x, i, arr) => (i === 0 ? sealEntry({ ...x, action: 'nothing' }, undefined) : x));
  let prev: AuditRecord | undefined;
  const rechained = rewritten.map((x) => (prev = sealEntry(x, prev)));
  const r = verifyAudit(rechained, [good], key.publicKey);
  assert.ok(!r.ok);
  assert.match(r.problems[0]!.reason, /does not match the signed checkpoint/);
});

test('several keys: each checkpoint is checked against the key it names; partial chains only when asked', () => {
  const k1 = generateAuditKey();
  const k2 = generateAuditKey();
  const a = makeChain(6, 'org_a');
  const cps = [signCheckpoint(k1, a[2]!, '2026-01-01T00:00:00.000Z'), signCheckpoint(k2, a[5]!, '2026-01-01T00:01:00.000Z')];
  const both = verifyAudit(a, cps, [k1.publicKey, k2.publicKey]);
  assert.ok(both.ok, JSON.stringify(both.problems));
  assert.deepEqual(both.ranges, [{ chain: 'org_a', first_seq: 1, last_seq: 6, signed_seq: 6 }]);
  const one = verifyAudit(a, cps, [k1.publicKey]);
  assert.deepEqual(one.problems.map((p) => p.seq), [6]);
  assert.match(one.problems[0]!.reason, /not among the trusted public keys/);

  const tail = a.slice(3);
  assert.equal(verifyAudit(tail, cps, [k1.publicKey, k2.publicKey]).ok, false, 'a chain must start at 1 unless partial');
  const partial = verifyAudit(tail, cps, [k1.publicKey, k2.publicKey], { partial: true });
  assert.ok(partial.ok, JSON.stringify(partial.problems));
  assert.deepEqual(partial.ranges, [{ chain: 'org_a', first_seq: 4, last_seq: 6, signed_seq: 6 }]);
  // Partial still catches an edit inside the part it has.
  const edited = tail.map((x) => (x.seq === 5 ? { ...x, action: 'nothing' } : x));
  assert.deepEqual(verifyAudit(edited, cps, [k1.publicKey, k2.publicKey], { partial: true }).problems.map((p) => p.seq), [5]);
});

// `ward audit …` against a fake API (the real server is exercised in test/integration/audit.test.ts):
// input mistakes, the offline verifier, paging, and exports that fail leave no file behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateAuditKey, publicKeyPem, sealEntry, signCheckpoint, type AuditRecord } from '../../../audit/index.ts';
import { fakeApi, runCli, tempDir, type FakeApi, type FakeReply, type RecordedRequest } from '../../testing.ts';

function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (let i = 0; i < n; i++) {
    out.push(sealEntry({
      chain: 'org_a', id: `aud_${i + 1}`, at: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(), org_id: 'org_a', actor_type: 'user',
      actor_id: 'usr_1', actor_label: 'ann@example.com', action: 'app.create', target: `app_${i}`, outcome: 'success',
      source_ip: '127.0.0.1', request_id: null, details: { name: `app-${i}` },
    }, out.at(-1)));
  }
  return out;
}

describe('ward audit', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let api: FakeApi;
  let handler: (req: RecordedRequest) => FakeReply = () => ({ status: 500 });
  const key = generateAuditKey();
  const entries = chain(5);
  const exportText = [
    { type: 'header', format: 'ward-audit-export/1', exported_at: '2026-01-02T00:00:00.000Z', org: 'org_a', since: null, public_keys: [{ key_id: key.keyId, pem: publicKeyPem(key.publicKey) }] },
    ...entries.map((e) => ({ type: 'entry', ...e })),
    { type: 'checkpoint', ...signCheckpoint(key, entries[4]!, '2026-01-01T01:00:00.000Z') },
  ].map((x) => JSON.stringify(x)).join('\n') + '\n';
  let env: Record<string, string>;

  before(async () => {
    tmp = await tempDir();
    api = await fakeApi((req) => handler(req));
    env = { WARD_API_URL: api.url, WARD_API_TOKEN: 'ward_tok_test' };
  });
  after(async () => {
    await api?.close();
    await tmp?.remove();
  });

  test('input mistakes are usage errors, before any request', async () => {
    const n = api.requests.length;
    for (const [argv, message] of [
      [['audit', 'verify', '--file', 'x.jsonl', '--org', 'acme'], /--org and --file do not go together/],
      [['audit', 'verify', '--public-key', 'k.pem'], /--public-key goes with --file/],
      [['audit', 'list', '--limit', '0'], /--limit must be a positive whole number/],
      [['audit', 'export', '--format', 'xml'], /xml/],
    ] as const) {
      const r = await runCli([...argv], { env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
    }
    assert.equal(api.requests.length, n);
  });

  test('verify --file works offline, names the bad entry and its line, and honours --public-key', async () => {
    const good = join(tmp.dir, 'good.jsonl');
    await writeFile(good, exportText);
    const ok = await runCli(['audit', 'verify', '--file', good], { env: {} });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^OK: 5 entries in 1 chain and 1 signed checkpoint verified/);
    assert.match(ok.stdout, /taken from the file itself/);

    const json = await runCli(['audit', 'verify', '--file', good, '--json'], { env: {} });
    const doc = JSON.parse(json.stdout);
    assert.equal(doc.ok, true);
    assert.equal(doc.org, 'org_a');

    const bad = join(tmp.dir, 'bad.jsonl');
    await writeFile(bad, exportText.replace('"app-2"', '"app-9"'));
    const r = await runCli(['audit', 'verify', '--file', bad], { env: {} });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^FAILED: chain org_a, seq 3, entry aud_3, line 4: its content does not match its hash/);

    const pub = join(tmp.dir, 'pub.pem');
    await writeFile(pub, publicKeyPem(key.publicKey));
    assert.equal((await runCli(['audit', 'verify', '--file', good, '--public-key', pub], { env: {} })).code, 0);
    const other = join(tmp.dir, 'other.pem');
    await writeFile(other, publicKeyPem(generateAuditKey().publicKey));
    const pinned = await runCli(['audit', 'verify', '--file', good, '--public-key', other], { env: {} });
    assert.equal(pinned.code, 1);
    assert.match(pinned.stdout, /not among the trusted public keys/);
    const notKey = await runCli(['audit', 'verify', '--file', good, '--public-key', good], { env: {} });
    assert.equal(notKey.code, 1);
    assert.match(notKey.stderr, /is not a PEM public key/);
  });

  test('verify asks the server and exits 1 when it reports a problem', async () => {
    const answer = { org: { id: 'org_a', name: 'acme', created_at: '2026-01-01T00:00:00.000Z' }, ok: false, chains: 1, entries: 5, checkpoints: 1, problems: [{ chain: 'org_a', seq: 3, id: 'aud_3', reason: 'its content does not match its hash: the entry was edited' }], ranges: [{ chain: 'org_a', first_seq: 1, last_seq: 5, signed_seq: 0 }], key_ids: [key.keyId] };
    handler = () => ({ status: 200, body: answer });
    const r = await runCli(['audit', 'verify', '--org', 'acme'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^org acme: FAILED: chain org_a, seq 3, entry aud_3: its content does not match its hash/);
    const req = api.requests.at(-1)!;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/v1/audit/verify?org=acme');
  });

  test('list follows next_after through every page, stopping at --limit', async () => {
    const org = { id: 'org_a', name: 'acme', created_at: '2026-01-01T00:00:00.000Z' };
    handler = (req) => {
      const after = Number(new URL(req.url, 'http://x').searchParams.get('after') ?? 0);
      const page = entries.filter((e) => e.seq > after).slice(0, 2);
      return { status: 200, body: { org, entries: page, next_after: page.length === 2 && page[1]!.seq < 5 ? page[1]!.seq : null } };
    };
    const all = await runCli(['audit', 'list', '--since', '7d', '--json'], { env });
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(JSON.parse(all.stdout).map((e: AuditRecord) => e.seq), [1, 2, 3, 4, 5]);
    assert.match(api.requests.at(-1)!.url, /since=7d/);
    const three = await runCli(['audit', 'list', '--limit', '3', '--json'], { env });
    assert.equal(JSON.parse(three.stdout).length, 3);
  });

  test('export writes the file 0600 only when the download completes; an error leaves nothing', async () => {
    handler = () => ({ status: 200, raw: exportText });
    const out = join(tmp.dir, 'exp.jsonl');
    const r = await runCli(['audit', 'export', '--output', out], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readFile(out, 'utf8'), exportText);
    assert.equal((await stat(out)).mode & 0o777, 0o600);
    assert.match(r.stderr, /Verify it: ward audit verify --file/);

    handler = () => ({ status: 403, body: { error: { code: 'forbidden', message: 'your role (developer) does not allow audit:read on org "acme"' } } });
    const denied = join(tmp.dir, 'denied.jsonl');
    const d = await runCli(['audit', 'export', '--format', 'csv', '--output', denied], { env });
    assert.equal(d.code, 1);
    assert.match(d.stderr, /audit:read/);
    assert.ok(!(await readdir(tmp.dir)).some((f) => f.startsWith('denied.jsonl')), 'no file, not even a partial one');
    assert.match(api.requests.at(-1)!.url, /format=csv/);
  });
});

// `ward wireguard …` and `ward orgs network …` against a fake API (the real server and agent are
// exercised in test/integration/agent-network.test.ts).
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isWireGuardKey, wireGuardPublicKey } from '../../../core/index.ts';
import { fakeApi, runCli, tempDir, type FakeApi, type FakeReply, type RecordedRequest } from '../../testing.ts';

describe('ward wireguard, ward orgs network', () => {
  let api: FakeApi;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let env: Record<string, string>;
  let handler: (req: RecordedRequest) => FakeReply = () => ({ status: 500 });
  const GATEWAY = 'gHVqBdAMb0rOT7L7FEjvTWmA3ZYbvbWKqNt2dLgkQ3s=';

  const created = (name: string, publicKey: string): FakeReply => ({
    status: 201,
    body: {
      peer: { id: 'wgp_1', name, public_key: publicKey, address: 'fd12:3456:789a:8001::2', created_by: 'usr_1', created_at: '2026-01-01T00:00:00.000Z' },
      tunnel: { org: 'acme', address: 'fd12:3456:789a:8001::2', dns: 'fd12:3456:789a:1::1', allowed_ips: ['fd12:3456:789a::/48'], gateway_public_key: GATEWAY, gateway_endpoint: 'gw.example.com:51820' },
    },
  });

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
      [['wireguard', 'create', '--name', 'Bad Name'], /invalid --name/],
      [['wireguard', 'create', '--json'], /--json needs --output/],
      [['orgs', 'network', 'set', '--org', 'acme'], /set needs --egress/],
      [['orgs', 'network', 'set', '--org', 'acme', '--egress', 'maybe'], /maybe/],
      [['orgs', 'network', 'show', '--org', 'acme', '--egress', 'deny'], /show takes no settings/],
    ] as const) {
      const r = await runCli([...argv], { env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
    }
    assert.equal(api.requests.length, n);
  });

  test('create sends only a public key and writes a 0600 wg-quick file with the private key', async () => {
    handler = (req) => (req.method === 'POST' ? created((req.body as any).name, (req.body as any).public_key) : { status: 500 });
    const file = join(tmp.dir, 'acme.conf');
    const r = await runCli(['wireguard', 'create', '--org', 'acme', '--name', 'alice', '--output', file], { env, cwd: tmp.dir });
    assert.equal(r.code, 0, r.stderr);
    const req = api.requests.at(-1)!;
    assert.equal(req.url, '/v1/orgs/acme/wireguard');
    assert.deepEqual(Object.keys(req.body as object).sort(), ['name', 'public_key']);
    const conf = await readFile(file, 'utf8');
    const priv = /^PrivateKey = (.+)$/m.exec(conf)![1]!;
    assert.ok(isWireGuardKey(priv));
    assert.equal(wireGuardPublicKey(priv), (req.body as any).public_key);
    assert.match(conf, /^Address = fd12:3456:789a:8001::2\/128$/m);
    assert.match(conf, /^DNS = fd12:3456:789a:1::1, internal$/m);
    assert.match(conf, /^AllowedIPs = fd12:3456:789a::\/48$/m);
    assert.match(conf, /^Endpoint = gw\.example\.com:51820$/m);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.ok(!r.stdout.includes(priv) && !r.stderr.includes(priv), 'the key goes to the file only');
  });

  test('an existing --output file is never overwritten, and no peer is made', async () => {
    const file = join(tmp.dir, 'taken.conf');
    await writeFile(file, 'mine\n');
    const n = api.requests.length;
    const r = await runCli(['wireguard', 'create', '--org', 'acme', '--name', 'bob', '--output', file], { env, cwd: tmp.dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the file exists/);
    assert.equal(await readFile(file, 'utf8'), 'mine\n');
    assert.equal(api.requests.length, n);
  });

  test('a refused create leaves no file behind', async () => {
    handler = () => ({ status: 409, body: { error: { code: 'name_taken', message: 'org "acme" already has a WireGuard peer named "bob"' } } });
    const file = join(tmp.dir, 'refused.conf');
    const r = await runCli(['wireguard', 'create', '--org', 'acme', '--name', 'bob', '--output', file], { env, cwd: tmp.dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already has a WireGuard peer/);
    await assert.rejects(stat(file), /ENOENT/);
  });

  test('list and remove; --org defaults to the only org', async () => {
    handler = (req) => {
      if (req.url === '/v1/orgs') return { status: 200, body: { orgs: [{ id: 'org_1', name: 'acme', role: 'owner', created_at: '2026-01-01T00:00:00.000Z' }] } };
      if (req.method === 'GET') return { status: 200, body: { peers: [{ id: 'wgp_1', name: 'alice', public_key: GATEWAY, address: 'fd12::2', created_by: null, created_at: '2026-01-01T00:00:00.000Z' }] } };
      return { status: 200, body: { peer: { id: 'wgp_1', name: 'alice', address: 'fd12::2' } } };
    };
    const l = await runCli(['wireguard', 'list'], { env });
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, /alice\s+fd12::2/);
    assert.equal(api.requests.at(-1)!.url, '/v1/orgs/acme/wireguard');
    const rm = await runCli(['wireguard', 'remove', 'alice', '--org', 'acme'], { env });
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual([api.requests.at(-1)!.method, api.requests.at(-1)!.url], ['DELETE', '/v1/orgs/acme/wireguard/alice']);
  });

  test('orgs network set sends the egress and shows the result', async () => {
    handler = (req) => ({ status: 200, body: { network: { org: 'acme', prefix: 'fd12:3456:789a::/48', egress: req.method === 'PUT' ? (req.body as any).egress : 'allow' } } });
    const r = await runCli(['orgs', 'network', 'set', '--org', 'acme', '--egress', 'deny'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(api.requests.at(-1)!.body, { egress: 'deny' });
    assert.match(r.stdout, /Egress\s+deny/);
  });
});

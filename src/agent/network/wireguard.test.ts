import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { generateWireGuardKeyPair, isWireGuardKey, wgQuickConfig, wireGuardPublicKey } from '../../core/index.ts';
import { run } from '../../exec/index.ts';
import { buildNetworkMap } from './mesh.ts';
import { routeCommands, syncconfArgv, wireGuardConfig } from './wireguard.ts';

const K = (c: string) => `${c.repeat(42)}A=`;

test('keys are X25519 pairs in WireGuard\'s base64, and match `wg pubkey`', async () => {
  const k = generateWireGuardKeyPair();
  assert.ok(isWireGuardKey(k.privateKey) && isWireGuardKey(k.publicKey));
  assert.equal(wireGuardPublicKey(k.privateKey), k.publicKey);
  assert.ok(!isWireGuardKey('short') && !isWireGuardKey(`${'a'.repeat(43)}=`));
  if (existsSync('/usr/bin/wg')) assert.equal((await run(['wg', 'pubkey'], { input: k.privateKey + '\n' })).stdout.trim(), k.publicKey);
});

test('the interface config lists peers in a stable order and refuses bad values', () => {
  const text = wireGuardConfig('PRIV', 51820, [
    { publicKey: K('b'), endpoint: '192.0.2.2:51820', allowedIPs: ['fd11:0:0:2::/64', 'fd22:0:0:2::/64'], keepalive: 25 },
    { publicKey: K('a'), allowedIPs: ['fd11:0:0:8001::a/128'] },
  ]);
  assert.equal(
    text,
    `[Interface]\nPrivateKey = PRIV\nListenPort = 51820\n\n[Peer]\nPublicKey = ${K('a')}\nAllowedIPs = fd11:0:0:8001::a/128\n\n` +
      `[Peer]\nPublicKey = ${K('b')}\nEndpoint = 192.0.2.2:51820\nAllowedIPs = fd11:0:0:2::/64, fd22:0:0:2::/64\nPersistentKeepalive = 25\n`,
  );
  assert.throws(() => wireGuardConfig('P', 1, [{ publicKey: 'x\n[Peer]', allowedIPs: [] }]), /public key/);
  assert.throws(() => wireGuardConfig('P', 1, [{ publicKey: K('a'), allowedIPs: ['::/0\nEndpoint = evil:1'] }]), /allowed IP/);
  assert.throws(() => wireGuardConfig('P', 1, [{ publicKey: K('a'), endpoint: 'a b:1', allowedIPs: [] }]), /endpoint/);
  assert.deepEqual(syncconfArgv('wg0', '/s/wg0.conf'), ['wg', 'syncconf', 'wg0', '/s/wg0.conf']);
  assert.equal(routeCommands('wg0', ['fd11::/64'], ['fd11::/64', 'fd99::/64']), 'route replace fd11::/64 dev wg0\nroute del fd99::/64 dev wg0\n');
});

test('the network map limits each peer to its slices of the orgs both hosts serve', () => {
  const hosts = [
    { id: 'h1', index: 1, publicKey: K('a'), endpoint: '192.0.2.1:51820' },
    { id: 'h2', index: 2, publicKey: K('b'), endpoint: '192.0.2.2:51820' },
    { id: 'h3', index: 3, publicKey: K('c'), endpoint: '192.0.2.3:51820' },
    { id: 'h4', index: 4, publicKey: null, endpoint: null },
  ];
  const orgs = [
    { orgId: 'org_a', prefix6: 'fd11::/48', egress: 'allow' as const },
    { orgId: 'org_b', prefix6: 'fd22::/48', egress: 'deny' as const },
    { orgId: 'org_c', prefix6: 'fd33::/48', egress: 'allow' as const },
  ];
  const ins = (hostId: string, orgId: string, n: number) => ({ hostId, orgId, app: orgId, instanceId: `ins_${n}`, region: 'ams', ipv6: `fd${orgId === 'org_a' ? 11 : orgId === 'org_b' ? 22 : 33}::${n}` });
  const instances = [ins('h1', 'org_a', 1), ins('h2', 'org_a', 2), ins('h2', 'org_b', 3), ins('h3', 'org_c', 4), ins('h1', 'org_b', 5)];
  const people = [{ orgId: 'org_a', publicKey: K('p'), address: 'fd11:0:0:8001::a', gatewayHostId: 'h1' }];
  const m1 = buildNetworkMap({ hostId: 'h1', hosts, orgs, people, instances });
  assert.equal(m1.hostIndex, 1);
  assert.deepEqual(m1.orgs.map((o) => o.orgId), ['org_a', 'org_b']);
  assert.deepEqual(m1.peers, [
    { hostId: 'h2', publicKey: K('b'), endpoint: '192.0.2.2:51820', allowedIPs: ['fd11:0:0:2::/64', 'fd22:0:0:2::/64'], keepalive: 25 },
    { hostId: 'h3', publicKey: K('c'), endpoint: '192.0.2.3:51820', allowedIPs: [], keepalive: 25 },
    { publicKey: K('p'), allowedIPs: ['fd11:0:0:8001::a/128'] },
  ]);
  assert.ok(!m1.records.some((r) => r.orgId === 'org_c'), 'no records of orgs the host does not serve');
  const m2 = buildNetworkMap({ hostId: 'h2', hosts, orgs, people, instances });
  assert.deepEqual(m2.peers.find((p) => p.hostId === 'h1')!.allowedIPs, ['fd11:0:0:1::/64', 'fd11:0:0:8001::/64', 'fd22:0:0:1::/64'], 'people behind h1 are reachable through it');
  assert.throws(() => buildNetworkMap({ hostId: 'nope', hosts, orgs, people, instances }), /unknown host/);
});

test('the wg-quick file for a person: org prefix only, internal resolver, no private key of the server', () => {
  const text = wgQuickConfig({ name: 'laptop', org: 'acme', privateKey: K('x'), address: 'fd11:0:0:8001::a', dns: 'fd11:0:0:1::1', allowedIPs: ['fd11::/48'], gatewayPublicKey: K('g'), gatewayEndpoint: 'host.example:51820' });
  assert.match(text, /^\[Interface\]\nPrivateKey = x{42}A=\nAddress = fd11:0:0:8001::a\/128\nDNS = fd11:0:0:1::1, internal\n\n\[Peer\]\nPublicKey = g{42}A=\nEndpoint = host.example:51820\nAllowedIPs = fd11::\/48\nPersistentKeepalive = 25\n$/m);
  assert.throws(() => wgQuickConfig({ name: 'a\nPostUp = rm -rf /', org: 'o', privateKey: K('x'), address: 'fd11::a', dns: 'fd11::1', allowedIPs: ['fd11::/48'], gatewayPublicKey: K('g'), gatewayEndpoint: 'h:1' }), /line break/);
});

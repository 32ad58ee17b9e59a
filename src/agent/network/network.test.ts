import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatIPv6,
  gateway4,
  gateway6,
  hostInterfaceName,
  instanceAddress4,
  instanceAddress6,
  parseIPv6,
  parsePrefix6,
  parseSubnet4,
} from './addresses.ts';
import { attachCommands, bridgeCommands, linkDeleteArgv, linkShowArgv, netnsDeleteArgv } from './commands.ts';
import { BridgeNetwork } from './bridge-network.ts';

const ID = 'ins_01m8k0tvw2wgc1tw50bhmd3s5c';

test('IPv6 text round-trips in RFC 5952 form', () => {
  for (const [input, canonical] of [
    ['fd77:6172:6400::1', 'fd77:6172:6400::1'],
    ['FD77:6172:6400:0:0:0:0:1', 'fd77:6172:6400::1'],
    ['fd00:0:0:1:0:0:0:1', 'fd00:0:0:1::1'],
    ['fd00:1:0:0:1:0:0:1', 'fd00:1::1:0:0:1'],
    ['::', '::'],
    ['fd00:1:2:3:4:5:6:7', 'fd00:1:2:3:4:5:6:7'],
  ] as const) {
    assert.equal(formatIPv6(parseIPv6(input)), canonical, input);
  }
  assert.throws(() => parseIPv6('10.0.0.1'), /not an IPv6/);
});

test('prefixes: ULA /64 only; private IPv4 /8–/24 only', () => {
  const p = parsePrefix6('fd77:6172:6400::/64');
  assert.equal(gateway6(p), 'fd77:6172:6400::1');
  assert.throws(() => parsePrefix6('2001:db8::/64'), /unique local/);
  assert.throws(() => parsePrefix6('fd77::/48'), /\/64/);
  assert.throws(() => parsePrefix6('fd77::1/64'), /host bits/);
  const s = parseSubnet4('10.89.0.0/16');
  assert.equal(gateway4(s), '10.89.0.1');
  assert.throws(() => parseSubnet4('8.8.0.0/16'), /private/);
  assert.throws(() => parseSubnet4('10.89.0.1/16'), /host bits/);
  assert.throws(() => parseSubnet4('10.0.0.0/30'), /\/8 to \/24/);
  assert.doesNotThrow(() => parseSubnet4('172.20.0.0/16'));
  assert.doesNotThrow(() => parseSubnet4('192.168.7.0/24'));
});

test('instance addresses are derived from the id, stable, within the prefix, never the gateway', () => {
  const p = parsePrefix6('fd77:6172:6400::/64');
  const a = instanceAddress6(p, ID);
  assert.equal(a, instanceAddress6(p, ID), 'stable');
  assert.ok(a.startsWith('fd77:6172:6400:0:') || a.startsWith('fd77:6172:6400::'), a);
  assert.notEqual(a, instanceAddress6(p, ID, 1));
  assert.notEqual(a, instanceAddress6(p, 'ins_01m8k0tvw2wgc1tw50bhmd3s5d'));

  const s = parseSubnet4('10.89.0.0/16');
  const v4 = instanceAddress4(s, ID, new Set());
  assert.match(v4, /^10\.89\.\d+\.\d+$/);
  assert.notEqual(instanceAddress4(s, ID, new Set([v4])), v4, 'taken addresses are skipped');
  // A /24 fills up: 253 usable, minus the gateway.
  const small = parseSubnet4('192.168.7.0/24');
  const used = new Set<string>();
  for (let i = 0; i < 253; i++) used.add(instanceAddress4(small, `ins_${i}`, used));
  assert.ok(!used.has('192.168.7.0') && !used.has('192.168.7.1') && !used.has('192.168.7.255'));
  assert.throws(() => instanceAddress4(small, 'ins_x', used), /no IPv4 address left/);
});

test('host interface names fit IFNAMSIZ', () => {
  assert.equal(hostInterfaceName('wv', ID).length, 15);
  assert.match(hostInterfaceName('wv', ID), /^wv[0-9a-f]{13}$/);
  assert.throws(() => hostInterfaceName('toolongpfx', ID), /2–7/);
  assert.throws(() => hostInterfaceName('w v', ID), /2–7/);
});

test('bridge commands', () => {
  assert.deepEqual(bridgeCommands({ bridge: 'ward0', exists: false, gateway6: 'fd77:6172:6400::1', prefix6Length: 64, gateway4: '10.89.0.1', prefix4Length: 16 }), [
    {
      argv: ['ip', '-batch', '-'],
      input: 'link add ward0 type bridge\nlink set ward0 up\naddr replace fd77:6172:6400::1/64 dev ward0 nodad\naddr replace 10.89.0.1/16 dev ward0\n',
    },
  ]);
  assert.ok(!bridgeCommands({ bridge: 'ward0', exists: true, gateway6: 'fd77::1', prefix6Length: 64, gateway4: '10.89.0.1', prefix4Length: 16 })[0]!.input!.includes('link add'));
  assert.deepEqual(linkShowArgv('ward0'), ['ip', '-json', 'link', 'show', 'dev', 'ward0']);
  assert.deepEqual(linkDeleteArgv('wv123'), ['ip', 'link', 'delete', 'dev', 'wv123']);
  assert.deepEqual(netnsDeleteArgv(`ward-${ID}`), ['ip', 'netns', 'delete', `ward-${ID}`]);
});

test('attach commands', () => {
  const ns = `ward-${ID}`;
  assert.deepEqual(
    attachCommands({
      netns: ns,
      netnsPath: `/run/netns/${ns}`,
      hostInterface: 'wv0123456789abc',
      bridge: 'ward0',
      ipv6: 'fd77:6172:6400:0:1:2:3:4',
      prefix6Length: 64,
      gateway6: 'fd77:6172:6400::1',
      ipv4: '10.89.3.4',
      prefix4Length: 16,
      gateway4: '10.89.0.1',
    }),
    [
      {
        argv: ['ip', '-batch', '-'],
        input: `netns add ${ns}\nlink add wv0123456789abc type veth peer name eth0 netns ${ns}\nlink set wv0123456789abc master ward0 up\n`,
      },
      {
        argv: ['ip', '-n', ns, '-batch', '-'],
        input:
          'link set lo up\naddr add fd77:6172:6400:0:1:2:3:4/64 dev eth0 nodad\naddr add 10.89.3.4/16 dev eth0\nlink set eth0 up\n' +
          'route add default via 10.89.0.1 dev eth0\nroute add default via fd77:6172:6400::1 dev eth0\n',
      },
      {
        argv: [
          'nsenter', `--net=/run/netns/${ns}`, '--', 'sysctl', '-q', '-w',
          'net.ipv4.ip_unprivileged_port_start=0', 'net.ipv6.conf.all.accept_ra=0', 'net.ipv6.conf.default.accept_ra=0',
        ],
      },
    ],
  );
});

test('BridgeNetwork refuses names that would reach the batch text unchecked', async () => {
  assert.throws(() => new BridgeNetwork({ stateDir: '/tmp/x', bridge: 'ward0\nlink del eth0' }), /interface name/);
  assert.throws(() => new BridgeNetwork({ stateDir: '/tmp/x', netnsPrefix: 'a b' }), /netns prefix/);
  assert.throws(() => new BridgeNetwork({ stateDir: '/tmp/x', ipv6Prefix: '2001:db8::/64' }), /unique local/);
  const net = new BridgeNetwork({ stateDir: '/tmp/x' });
  await assert.rejects(net.attach({ instanceId: 'ins_x\nnetns del y', orgId: 'org_a' }), /not an ins_ id/);
  await assert.rejects(net.detach('../etc'), /not an ins_ id/);
  assert.deepEqual(net.gateways, { ipv6: 'fd77:6172:6400::1', ipv4: '10.89.0.1' });
});

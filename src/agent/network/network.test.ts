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
  deriveOrgPrefix,
  hostSlice,
  macAddress,
  orgSubnet4,
  parseOrgPrefix,
  peopleSlice,
  prefixContains,
  formatPrefix,
  formatSubnet4,
  subnet4Contains,
} from './addresses.ts';
import { attachCommands, bridgeCommands, linkDeleteArgv, linkShowArgv, neighbourCommands, netnsDeleteArgv, plugCommands } from './commands.ts';
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

test('org prefixes: a ULA /48 per org, a /64 per host, a /64 per gateway for people', () => {
  const a = deriveOrgPrefix('seed', 'org_a');
  assert.match(a, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/48$/);
  assert.equal(deriveOrgPrefix('seed', 'org_a'), a, 'stable');
  assert.notEqual(deriveOrgPrefix('seed', 'org_b'), a);
  assert.notEqual(deriveOrgPrefix('other', 'org_a'), a, 'installations differ');
  assert.notEqual(deriveOrgPrefix('seed', 'org_a', 1), a, 'a retry after a clash');
  const p = parseOrgPrefix('fd12:3456:789a::/48');
  assert.equal(formatPrefix(hostSlice(p, 1)), 'fd12:3456:789a:1::/64');
  assert.equal(formatPrefix(hostSlice(p, 0x7fff)), 'fd12:3456:789a:7fff::/64');
  assert.equal(formatPrefix(peopleSlice(p, 1)), 'fd12:3456:789a:8001::/64');
  assert.throws(() => hostSlice(p, 0), /host index/);
  assert.throws(() => hostSlice(p, 0x8000), /host index/);
  assert.throws(() => parseOrgPrefix('fd12:3456:789a:1::/48'), /beyond/);
  assert.throws(() => parseOrgPrefix('fc12:3456:789a::/48'), /fd00::\/8/);
  assert.throws(() => parseOrgPrefix('fd12:3456:789a::/64'), /\/48/);
  const ins = instanceAddress6(hostSlice(p, 2), ID);
  assert.ok(prefixContains(p, ins) && prefixContains(hostSlice(p, 2), ins) && !prefixContains(hostSlice(p, 1), ins));
  assert.ok(!prefixContains(parseOrgPrefix('fd12:3456:789b::/48'), ins));
  assert.ok(!prefixContains(p, 'not-an-address'));
  const s4 = orgSubnet4(parseSubnet4('10.89.0.0/16'), 3);
  assert.equal(formatSubnet4(s4), '10.89.3.0/24');
  assert.ok(subnet4Contains(s4, '10.89.3.77') && !subnet4Contains(s4, '10.89.4.1'));
  assert.throws(() => orgSubnet4(parseSubnet4('10.89.0.0/16'), 0), /1…255/);
  assert.match(macAddress(ID), /^02(:[0-9a-f]{2}){5}$/);
  assert.equal(macAddress(ID), macAddress(ID));
});


test('bridge commands', () => {
  assert.deepEqual(bridgeCommands({ bridge: 'wb0123', exists: false, mac: '02:00:00:00:00:01', gateway6: 'fd12:3456:789a:1::1', prefix6Length: 64, gateway4: '10.89.1.1', prefix4Length: 24 }), [
    {
      argv: ['ip', '-batch', '-'],
      input:
        'link add wb0123 address 02:00:00:00:00:01 type bridge mcast_snooping 0\nlink set wb0123 addrgenmode none\nlink set wb0123 up\n' +
        'addr replace fd12:3456:789a:1::1/64 dev wb0123 nodad\naddr replace 10.89.1.1/24 dev wb0123\n',
    },
  ]);
  assert.ok(!bridgeCommands({ bridge: 'wb0123', exists: true, mac: '02:00:00:00:00:01', gateway6: 'fd77::1', prefix6Length: 64, gateway4: '10.89.0.1', prefix4Length: 16 })[0]!.input!.includes('link add'));
  assert.deepEqual(linkShowArgv('ward0'), ['ip', '-json', 'link', 'show', 'dev', 'ward0']);
  assert.deepEqual(linkDeleteArgv('wv123'), ['ip', 'link', 'delete', 'dev', 'wv123']);
  assert.deepEqual(netnsDeleteArgv(`ward-${ID}`), ['ip', 'netns', 'delete', `ward-${ID}`]);
});

test('attach, plug and neighbour commands', () => {
  const ns = `ward-${ID}`;
  const plan = {
    netns: ns,
    netnsPath: `/run/netns/${ns}`,
    hostInterface: 'wv0123456789abc',
    hostMac: '02:00:00:00:00:0a',
    mac: '02:00:00:00:00:0b',
    bridge: 'wb0123',
    bridgeMac: '02:00:00:00:00:01',
    ipv6: 'fd12:3456:789a:1:1:2:3:4',
    prefix6Length: 64,
    gateway6: 'fd12:3456:789a:1::1',
    ipv4: '10.89.1.4',
    prefix4Length: 24,
    gateway4: '10.89.1.1',
  };
  assert.deepEqual(attachCommands(plan), [
    {
      argv: ['ip', '-batch', '-'],
      input: `netns add ${ns}\nlink add wv0123456789abc address 02:00:00:00:00:0a type veth peer name eth0 address 02:00:00:00:00:0b netns ${ns}\n`,
    },
    {
      argv: ['ip', '-n', ns, '-batch', '-'],
      input:
        'link set lo up\nlink set eth0 addrgenmode none\naddr add fd12:3456:789a:1:1:2:3:4/64 dev eth0 nodad\naddr add 10.89.1.4/24 dev eth0\nlink set eth0 up\n' +
        'neigh replace fd12:3456:789a:1::1 lladdr 02:00:00:00:00:01 dev eth0 nud permanent\nneigh replace 10.89.1.1 lladdr 02:00:00:00:00:01 dev eth0 nud permanent\n' +
        'route add default via 10.89.1.1 dev eth0\nroute add default via fd12:3456:789a:1::1 dev eth0\n',
    },
    {
      argv: [
        'nsenter', `--net=/run/netns/${ns}`, '--', 'sysctl', '-q', '-w',
        'net.ipv4.ip_unprivileged_port_start=0', 'net.ipv6.conf.all.accept_ra=0', 'net.ipv6.conf.default.accept_ra=0',
        'net.ipv6.conf.eth0.accept_ra=0', 'net.ipv6.conf.all.accept_redirects=0', 'net.ipv4.conf.all.accept_redirects=0',
      ],
    },
  ]);
  assert.deepEqual(plugCommands(plan), [
    {
      argv: ['ip', '-batch', '-'],
      input:
        'link set wv0123456789abc master wb0123 up\n' +
        'neigh replace fd12:3456:789a:1:1:2:3:4 lladdr 02:00:00:00:00:0b dev wb0123 nud permanent\nneigh replace 10.89.1.4 lladdr 02:00:00:00:00:0b dev wb0123 nud permanent\n',
    },
  ]);
  assert.equal(neighbourCommands(ns, []), undefined);
  assert.deepEqual(neighbourCommands(ns, [{ ipv6: 'fd12::5', ipv4: '10.89.1.5', mac: '02:00:00:00:00:0c' }]), {
    argv: ['ip', '-force', '-n', ns, '-batch', '-'],
    input: 'neigh replace fd12::5 lladdr 02:00:00:00:00:0c dev eth0 nud permanent\nneigh replace 10.89.1.5 lladdr 02:00:00:00:00:0c dev eth0 nud permanent\n',
  });
  assert.deepEqual(neighbourCommands(ns, [{ ipv6: 'fd12::5', ipv4: '10.89.1.5', mac: '02:00:00:00:00:0c' }], true)?.input, 'neigh del fd12::5 dev eth0\nneigh del 10.89.1.5 dev eth0\n');
});

test('BridgeNetwork refuses names that would reach the batch text unchecked', async () => {
  assert.throws(() => new BridgeNetwork({ stateDir: '/tmp/x', bridgePrefix: 'wb\nlink' }), /prefix/);
  assert.throws(() => new BridgeNetwork({ stateDir: '/tmp/x', netnsPrefix: 'a b' }), /netns prefix/);
  assert.throws(() => new BridgeNetwork({ stateDir: '/tmp/x', table: 'ward; flush ruleset' }), /table name/);
  assert.throws(() => new BridgeNetwork({ stateDir: '/tmp/x', bridgePrefix: 'wv', linkPrefix: 'wvx' }), /overlap/);
  assert.throws(() => new BridgeNetwork({ stateDir: '/tmp/x', hostIndex: 0x8000 }), /host index/);
  assert.throws(() => new BridgeNetwork({ stateDir: '/tmp/x', ipv4Subnet: '10.89.0.0/24' }), /\/16/);
  const net = new BridgeNetwork({ stateDir: '/tmp/x' });
  await assert.rejects(net.attach({ instanceId: 'ins_x\nnetns del y', orgId: 'org_a' }), /not an ins_ id/);
  await assert.rejects(net.detach('../etc'), /not an ins_ id/);
  await assert.rejects(net.ensure('org_a\nlink del'), /org id/);
  const v = net.view({ orgId: 'org_a', prefix6: 'fd12:3456:789a::/48', egress: 'allow', index4: 2, bridge: 'wb0123456789abc' });
  assert.deepEqual([v.slice6, v.gateway6, v.subnet4, v.gateway4], ['fd12:3456:789a:1::/64', 'fd12:3456:789a:1::1', '10.89.2.0/24', '10.89.2.1']);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { run } from '../../exec/index.ts';
import { nftDeleteScript, renderRuleset, type FirewallState } from './nftables.ts';

const STATE: FirewallState = {
  table: 'ward',
  bridgePrefix: 'wb',
  portPrefix: 'wv',
  tunnelPrefix: 'wg',
  ipv4Network: '10.89.0.0/16',
  orgs: [
    { orgId: 'org_b', prefix6: 'fd22::/48', slice6: 'fd22:0:0:1::/64', bridge: 'wbbbbb', gateway6: 'fd22:0:0:1::1', subnet4: '10.89.2.0/24', gateway4: '10.89.2.1', egress: false },
    { orgId: 'org_a', prefix6: 'fd11::/48', slice6: 'fd11:0:0:1::/64', bridge: 'wbaaaa', gateway6: 'fd11:0:0:1::1', subnet4: '10.89.1.0/24', gateway4: '10.89.1.1', egress: true },
  ],
  ports: [{ name: 'wv1', mac: '02:00:00:00:00:01', ipv6: 'fd11:0:0:1::5', ipv4: '10.89.1.5' }],
};

test('the ruleset replaces both tables in one script, sorted, from the desired state', () => {
  const text = renderRuleset(STATE);
  const lines = text.split('\n');
  assert.deepEqual(lines.slice(0, 3), ['table inet ward {}', 'delete table inet ward', 'table inet ward {']);
  assert.ok(text.includes('    elements = { fd11::/48 . fd11::/48, fd22::/48 . fd22::/48 }'), 'org pairs, one per org');
  assert.ok(text.includes('    elements = { "wbaaaa" . fd11:0:0:1::1, "wbbbbb" . fd22:0:0:1::1 }'), 'each bridge reaches only its own resolver');
  assert.ok(text.includes('    elements = { "wbaaaa" }'), 'egress only for the org that allows it');
  assert.ok(text.includes('table bridge ward {}\ndelete table bridge ward\ntable bridge ward {'));
  assert.ok(text.includes('    iifname vmap { "wv1" : jump port_wv1 }\n    iifname "wv*" drop'));
  assert.ok(text.includes('    ether saddr != 02:00:00:00:00:01 drop'));
  assert.ok(text.includes('    ether type ip6 icmpv6 type nd-neighbor-advert @th,64,128 != 0xfd110000000000010000000000000005 drop'));
  assert.ok(text.includes('    ether type arp arp htype 1 arp ptype ip arp saddr ether 02:00:00:00:00:01 arp saddr ip 10.89.1.5 accept'));
  assert.equal(renderRuleset({ ...STATE, orgs: [...STATE.orgs].reverse() }), text, 'order of input does not matter');
  const empty = renderRuleset({ ...STATE, orgs: [], ports: [] });
  assert.ok(!empty.includes('elements') && !empty.includes('vmap'), 'empty sets have no elements line');
  assert.ok(empty.includes('    iifname "wv*" drop'), 'with no port described, every Ward port is closed');
});

test('the ruleset refuses names and MACs that could change its meaning', () => {
  assert.throws(() => renderRuleset({ ...STATE, table: 'ward }' }), /not an interface name/);
  assert.throws(() => renderRuleset({ ...STATE, ports: [{ ...STATE.ports[0]!, name: 'wv1"; flush ruleset' }] }), /not an interface name/);
  assert.throws(() => renderRuleset({ ...STATE, ports: [{ ...STATE.ports[0]!, mac: '02:00:00:00:00:01 accept' }] }), /bad MAC/);
  assert.throws(() => renderRuleset({ ...STATE, portPrefix: 'wbx' }), /overlap/);
  assert.equal(nftDeleteScript('ward'), 'table inet ward {}\ndelete table inet ward\ntable bridge ward {}\ndelete table bridge ward\n');
});

test('nft accepts the rendered ruleset', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async (t) => {
  const probe = await run(['nft', '--version'], { allowFailure: true }).catch(() => undefined);
  if (!probe || probe.code !== 0) return t.skip('nft is missing: run scripts/bootstrap --test');
  // A namespace of its own: the check must not touch the host's rules.
  const ns = `wnft${randomBytes(3).toString('hex')}`;
  await run(['ip', 'netns', 'add', ns]);
  try {
    await run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], { input: renderRuleset(STATE) });
    await run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], { input: renderRuleset({ ...STATE, ports: [] }) });
    const listed = (await run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'tables'])).stdout;
    assert.match(listed, /table inet ward/);
    assert.match(listed, /table bridge ward/);
    await run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], { input: nftDeleteScript('ward') });
    assert.equal((await run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'tables'])).stdout.trim(), '');
  } finally {
    await run(['ip', 'netns', 'delete', ns]);
  }
});

// The private network against the real thing, trying to break it: namespaces stand in for hosts (each
// running the agent's network code in a process of its own), BridgeNetwork attaches instances, nftables
// filters, the internal resolver answers, WireGuard (wireguard-go here) joins hosts and people. Every
// expectation is checked both ways: "expected allowed, was blocked" and "expected blocked, was allowed"
// both fail. Needs root, nft, wg, wireguard-go and python3 (scripts/bootstrap --test); CI runs as root.
// Everything is removed afterwards, even on failure (NetLab.cleanup), and the after-hook checks it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newId, generateWireGuardKeyPair, wgQuickConfig } from '../../src/core/index.ts';
import { run } from '../../src/exec/index.ts';
import { deriveOrgPrefix, formatPrefix, hostSlice, parseOrgPrefix, peopleSlice, type OrgView } from '../../src/agent/network/index.ts';
import { buildNetworkMap } from '../../src/agent/network/mesh.ts';
import { TYPE_AAAA, TYPE_TXT, TYPE_A, RCODE_NXDOMAIN, RCODE_NOERROR } from '../../src/agent/network/dns/codec.ts';
import { NetLab, PEER_PORT, cannotRunNetworkTests, matrix, type Case, type Host, type Instance, type Probe, type Rpc } from './network/lab.ts';
import { arpFrame, neighbourAdvertFrame, routerAdvertFrame, sendFramesArgv, udp4Frame, udp6Frame } from './network/frames.ts';

const skip = cannotRunNetworkTests();

describe('private network on one host', { skip, timeout: 240_000 }, () => {
  const lab = new NetLab();
  let h1: Host;
  let out: Rpc;
  let hostProbe: Rpc;
  let outNs: string;
  const I: Record<string, Instance> = {};
  let orgs: Record<string, OrgView>;
  const HOST_PORTS = [22, 80, 443, 2019, 4222, 5432, 8080, 9090];

  before(async () => {
    await lab.setUp();
    outNs = await lab.netns('out');
    h1 = await lab.host('h1', 1, { upstreams: [{ address: '198.51.100.2', port: 53 }] });
    // The "outside": a namespace on h1's uplink that also serves as the upstream resolver. It routes
    // Ward's private ranges to h1, as an attacker on the host's LAN would.
    await lab.link(h1.netns, ['198.51.100.1/24', '2001:db8:100::1/64'], outNs, ['198.51.100.2/24', '2001:db8:100::2/64'], 'u');
    await run(['ip', '-n', outNs, 'route', 'add', '10.0.0.0/8', 'via', '198.51.100.1']);
    await run(['ip', '-n', outNs, '-6', 'route', 'add', 'fd00::/8', 'via', '2001:db8:100::1']);
    out = await lab.peerIn(outNs, 'outside', { DNS: '1' });
    await h1.agent.call('ensure', { orgId: 'org_a', options: { egress: 'allow' } });
    await h1.agent.call('ensure', { orgId: 'org_b', options: { egress: 'deny' } });
    for (const [name, org] of [['a1', 'org_a'], ['a2', 'org_a'], ['a3', 'org_a'], ['b1', 'org_b']] as const) I[name] = await lab.instance(h1, org, newId('instance'));
    orgs = Object.fromEntries((await h1.agent.call<OrgView[]>('orgs')).map((o) => [o.orgId, o]));
    await h1.agent.call('records', {
      records: [
        { orgId: 'org_a', app: 'web', instanceId: I.a1!.id, region: 'ams', ipv6: I.a1!.attachment.ipv6 },
        { orgId: 'org_a', app: 'web', instanceId: I.a2!.id, region: 'fra', ipv6: I.a2!.attachment.ipv6 },
        { orgId: 'org_a', app: 'db', instanceId: I.a3!.id, region: 'ams', ipv6: I.a3!.attachment.ipv6 },
        { orgId: 'org_b', app: 'secret', instanceId: I.b1!.id, region: 'ams', ipv6: I.b1!.attachment.ipv6 },
      ],
    });
    await h1.agent.call('listen', { ports: HOST_PORTS });
    hostProbe = await lab.peerIn(h1.netns, 'host');
  });

  after(async () => {
    await lab.cleanup();
    assert.deepEqual(await lab.leftovers(), [], 'nothing with the prefix is left');
  });

  test('addresses come from the org prefix, the host slice and the instance id', () => {
    const a = parseOrgPrefix(deriveOrgPrefix(lab.prefix, 'org_a'));
    assert.equal(orgs.org_a!.prefix6, formatPrefix(a));
    assert.equal(orgs.org_a!.slice6, formatPrefix(hostSlice(a, 1)));
    assert.ok(I.a1!.attachment.ipv6.startsWith(orgs.org_a!.slice6.replace('::/64', ':')), I.a1!.attachment.ipv6);
    assert.ok(I.b1!.attachment.ipv6.startsWith(orgs.org_b!.slice6.replace('::/64', ':')));
    assert.deepEqual(I.a1!.attachment.nameservers, [orgs.org_a!.gateway6, orgs.org_a!.gateway4]);
    assert.notEqual(orgs.org_a!.bridge, orgs.org_b!.bridge, 'one bridge per org');
  });

  test('the same-host reachability matrix, TCP and UDP over IPv6 and IPv4', async () => {
    const cases: Case[] = [];
    const inst = ['a1', 'a2', 'a3', 'b1'];
    for (const f of inst) {
      for (const t of inst) {
        if (f === t) continue;
        const allowed = I[f]!.orgId === I[t]!.orgId;
        cases.push({ from: f, src: I[f]!.peer, to: `${t} v6`, host: I[t]!.attachment.ipv6, allowed });
        cases.push({ from: f, src: I[f]!.peer, to: `${t} v4`, host: I[t]!.attachment.ipv4, allowed });
      }
      // Egress: org_a allows it, org_b denies it.
      const egress = I[f]!.orgId === 'org_a';
      cases.push({ from: f, src: I[f]!.peer, to: 'outside v4', host: '198.51.100.2', allowed: egress });
      cases.push({ from: f, src: I[f]!.peer, to: 'outside v6', host: '2001:db8:100::2', allowed: egress });
      // Nothing outside reaches an instance; the host does (health checks, the edge).
      cases.push({ from: 'outside', src: out, to: `${f} v6`, host: I[f]!.attachment.ipv6, allowed: false });
      cases.push({ from: 'outside', src: out, to: `${f} v4`, host: I[f]!.attachment.ipv4, allowed: false });
      cases.push({ from: 'host', src: hostProbe, to: `${f} v6`, host: I[f]!.attachment.ipv6, allowed: true });
      cases.push({ from: 'host', src: hostProbe, to: `${f} v4`, host: I[f]!.attachment.ipv4, allowed: true });
    }
    assert.deepEqual(await matrix(cases), []);
  });

  test('an instance probing every host address and port reaches only its own resolver', async () => {
    const a = orgs.org_a!;
    const b = orgs.org_b!;
    const hostAddresses = [a.gateway6, a.gateway4, b.gateway6, b.gateway4, '198.51.100.1', '2001:db8:100::1'];
    const cases: Case[] = [];
    for (const addr of hostAddresses) {
      for (const port of [...HOST_PORTS, PEER_PORT, 53]) {
        const allowed = port === 53 && (addr === a.gateway6 || addr === a.gateway4);
        cases.push({ from: 'a1', src: I.a1!.peer, to: `host ${addr}`, host: addr, port, allowed });
      }
    }
    // UDP 53 answers only DNS, so the probe's payload gets no echo: the resolver test checks it as DNS.
    const wrong = (await matrix(cases, 500)).filter((w) => !(w.includes('(udp') && w.includes(' 53)') && w.includes('expected allowed')));
    assert.deepEqual(wrong, []);
    // Every TCP port below 1025 and a spread above, on each address: none opens.
    const probes: Probe[] = [];
    for (const addr of hostAddresses) {
      for (let port = 1; port <= 1024; port++) if (port !== 53) probes.push({ proto: 'tcp', host: addr, port });
      for (let port = 1025; port < 65536; port += 997) probes.push({ proto: 'tcp', host: addr, port });
    }
    const results = await I.a1!.peer.call<boolean[]>('probe', { probes, timeoutMs: 300, concurrency: 512 });
    const open = probes.filter((_, i) => results[i]).map((p) => `${p.host}:${p.port}`);
    assert.deepEqual(open, [], 'no host port answers an instance');
  });

  test('the resolver answers the asking org only, over UDP and TCP, and forwards other names', async () => {
    const a = orgs.org_a!;
    const b = orgs.org_b!;
    const ask = (who: Instance, server: string, name: string, type = TYPE_AAAA, transport: 'udp' | 'tcp' = 'udp') =>
      who.peer.call<{ rcode: number; answers: { data: unknown }[]; timeout?: boolean }>('dns', { server, name, type, timeoutMs: 1500, transport });
    const web = await ask(I.a3!, a.gateway6, 'web.internal');
    assert.deepEqual(web.answers.map((x) => x.data).sort(), [I.a1!.attachment.ipv6, I.a2!.attachment.ipv6].sort());
    assert.deepEqual((await ask(I.a3!, a.gateway4, 'web.internal', TYPE_AAAA, 'tcp')).answers.length, 2, 'TCP, on the IPv4 gateway');
    assert.deepEqual((await ask(I.a3!, a.gateway6, 'fra.web.internal')).answers.map((x) => x.data), [I.a2!.attachment.ipv6]);
    assert.deepEqual((await ask(I.a3!, a.gateway6, `${I.a1!.id}.vm.web.internal`)).answers.map((x) => x.data), [I.a1!.attachment.ipv6]);
    assert.deepEqual((await ask(I.a3!, a.gateway6, '_apps.internal', TYPE_TXT)).answers.map((x) => x.data), [['db,web']]);
    // Another org's app: the same answer as a name nobody has.
    const secret = await ask(I.a1!, a.gateway6, 'secret.internal');
    assert.deepEqual([secret.rcode, secret.answers], [RCODE_NXDOMAIN, []]);
    assert.equal((await ask(I.a1!, a.gateway6, `${I.b1!.id}.vm.secret.internal`)).rcode, RCODE_NXDOMAIN);
    // The other org's resolver address is closed to a1 altogether.
    assert.equal((await ask(I.a1!, b.gateway6, 'secret.internal')).timeout, true);
    assert.equal((await ask(I.a1!, b.gateway4, 'secret.internal', TYPE_AAAA, 'tcp')).timeout, true);
    // b1 sees its own app and none of org_a's.
    assert.deepEqual((await ask(I.b1!, b.gateway6, 'secret.internal')).answers.map((x) => x.data), [I.b1!.attachment.ipv6]);
    assert.equal((await ask(I.b1!, b.gateway6, 'web.internal')).rcode, RCODE_NXDOMAIN);
    assert.deepEqual((await ask(I.b1!, b.gateway6, '_apps.internal', TYPE_TXT)).answers.map((x) => x.data), [['secret']]);
    // Other names go upstream.
    const fwd = await ask(I.a1!, a.gateway6, 'example.com', TYPE_A);
    assert.deepEqual([fwd.rcode, fwd.answers.map((x) => x.data)], [RCODE_NOERROR, ['192.0.2.53']]);
    const fwdTcp = await ask(I.a1!, a.gateway4, 'example.com', TYPE_A, 'tcp');
    assert.deepEqual(fwdTcp.answers.map((x) => x.data), ['192.0.2.53']);
  });

  test('raw frames with a neighbour\'s or another org\'s source address are dropped', async () => {
    const { a1, a2, a3, b1 } = I as Record<string, Instance>;
    const bridgeMac = orgs.org_a!.bridgeMac;
    const tag = `spoof-${Date.now()}`;
    const frames = [
      // Control: a1's own addresses and MAC, straight to a2: these must arrive, or the test proves nothing.
      udp6Frame({ srcMac: a1!.attachment.mac!, dstMac: a2!.attachment.mac!, src: a1!.attachment.ipv6, dst: a2!.attachment.ipv6, dport: PEER_PORT, payload: `${tag}-legit6` }),
      udp4Frame({ srcMac: a1!.attachment.mac!, dstMac: a2!.attachment.mac!, src: a1!.attachment.ipv4, dst: a2!.attachment.ipv4, dport: PEER_PORT, payload: `${tag}-legit4` }),
      // A neighbour's address (a3), same org.
      udp6Frame({ srcMac: a1!.attachment.mac!, dstMac: a2!.attachment.mac!, src: a3!.attachment.ipv6, dst: a2!.attachment.ipv6, dport: PEER_PORT, payload: `${tag}-neighbour6` }),
      udp4Frame({ srcMac: a1!.attachment.mac!, dstMac: a2!.attachment.mac!, src: a3!.attachment.ipv4, dst: a2!.attachment.ipv4, dport: PEER_PORT, payload: `${tag}-neighbour4` }),
      // A neighbour's MAC with a1's own address.
      udp6Frame({ srcMac: a3!.attachment.mac!, dstMac: a2!.attachment.mac!, src: a1!.attachment.ipv6, dst: a2!.attachment.ipv6, dport: PEER_PORT, payload: `${tag}-mac` }),
      // Another org's address, to a2 directly and, routed through the gateway, to b1.
      udp6Frame({ srcMac: a1!.attachment.mac!, dstMac: a2!.attachment.mac!, src: b1!.attachment.ipv6, dst: a2!.attachment.ipv6, dport: PEER_PORT, payload: `${tag}-otherorg6` }),
      udp6Frame({ srcMac: a1!.attachment.mac!, dstMac: bridgeMac, src: a2!.attachment.ipv6, dst: b1!.attachment.ipv6, dport: PEER_PORT, payload: `${tag}-tob1` }),
      udp4Frame({ srcMac: a1!.attachment.mac!, dstMac: bridgeMac, src: a2!.attachment.ipv4, dst: b1!.attachment.ipv4, dport: PEER_PORT, payload: `${tag}-tob1v4` }),
      // An address in org_b's prefix that nobody holds, and one outside every prefix.
      udp6Frame({ srcMac: a1!.attachment.mac!, dstMac: a2!.attachment.mac!, src: orgs.org_b!.gateway6.replace(/::1$/, '::99'), dst: a2!.attachment.ipv6, dport: PEER_PORT, payload: `${tag}-unassigned` }),
      udp6Frame({ srcMac: a1!.attachment.mac!, dstMac: a2!.attachment.mac!, src: '2001:db8:100::2', dst: a2!.attachment.ipv6, dport: PEER_PORT, payload: `${tag}-outsider` }),
      // Link-local and unspecified sources for data.
      udp6Frame({ srcMac: a1!.attachment.mac!, dstMac: a2!.attachment.mac!, src: 'fe80::1', dst: a2!.attachment.ipv6, dport: PEER_PORT, payload: `${tag}-linklocal` }),
      udp6Frame({ srcMac: a1!.attachment.mac!, dstMac: a2!.attachment.mac!, src: '::', dst: a2!.attachment.ipv6, dport: PEER_PORT, payload: `${tag}-unspecified` }),
    ];
    await run(sendFramesArgv(a1!.attachment.netnsPath, frames));
    await new Promise((r) => setTimeout(r, 300));
    const seenA2 = (await a2!.peer.call<{ seen: string[] }>('seen')).seen.filter((s) => s.startsWith(tag));
    const seenB1 = (await b1!.peer.call<{ seen: string[] }>('seen')).seen.filter((s) => s.startsWith(tag));
    assert.deepEqual(seenA2.sort(), [`${tag}-legit4`, `${tag}-legit6`], 'only the frames with a1\'s own addresses arrive');
    assert.deepEqual(seenB1, [], 'nothing reaches the other org');
  });

  test('router advertisements, lying neighbour advertisements and ARP from an instance change nothing', async () => {
    const { a1, a2 } = I as Record<string, Instance>;
    const a = orgs.org_a!;
    const neighOf = async (ns: string) => (await run(['ip', '-n', ns, 'neigh', 'show'])).stdout;
    const hostNeigh = async () => (await run(['ip', '-n', h1.netns, 'neigh', 'show', 'dev', a.bridge])).stdout;
    const routes6 = async (ns: string) => (await run(['ip', '-n', ns, '-6', 'route', 'show'])).stdout;
    const before = { a2: await neighOf(a2!.attachment.netnsName), host: await hostNeigh(), routes: await routes6(a2!.attachment.netnsName) };
    const mine = a1!.attachment.mac!;
    await run(
      sendFramesArgv(a1!.attachment.netnsPath, [
        routerAdvertFrame({ srcMac: mine, src: a.gateway6, prefix: 'fd66:6666:6666:1::' }),
        routerAdvertFrame({ srcMac: mine, src: a1!.attachment.ipv6, prefix: 'fd66:6666:6666:2::' }),
        // "The gateway is at my MAC", to a2 and to everyone; "a2 is at my MAC", to the host.
        neighbourAdvertFrame({ srcMac: mine, dstMac: a2!.attachment.mac!, src: a1!.attachment.ipv6, dst: a2!.attachment.ipv6, target: a.gateway6, claimMac: mine }),
        neighbourAdvertFrame({ srcMac: mine, dstMac: '33:33:00:00:00:01', src: a1!.attachment.ipv6, dst: 'ff02::1', target: a.gateway6, claimMac: mine }),
        neighbourAdvertFrame({ srcMac: mine, dstMac: a.bridgeMac, src: a1!.attachment.ipv6, dst: a.gateway6, target: a2!.attachment.ipv6, claimMac: mine }),
        arpFrame({ srcMac: mine, claimMac: mine, ip: a.gateway4 }),
        arpFrame({ srcMac: mine, claimMac: mine, ip: a2!.attachment.ipv4 }),
      ]),
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await neighOf(a2!.attachment.netnsName), before.a2, 'a2\'s neighbours unchanged');
    assert.equal(await hostNeigh(), before.host, 'the host\'s neighbours unchanged');
    assert.equal(await routes6(a2!.attachment.netnsName), before.routes, 'no route or prefix from the advertisement');
    assert.match(before.a2, new RegExp(`${a.gateway6} dev eth0 lladdr ${a.bridgeMac} PERMANENT`));
    // Traffic still flows the right way.
    assert.deepEqual(await matrix([{ from: 'a2', src: a2!.peer, to: 'a1', host: a1!.attachment.ipv6, allowed: true }, { from: 'a2', src: a2!.peer, to: 'outside', host: '198.51.100.2', allowed: true }]), []);
  });

  test('no leak at any moment while the agent restarts and reapplies the rules', { timeout: 90_000 }, async () => {
    const { a1, a2, b1 } = I as Record<string, Instance>;
    let stop = false;
    const leaks: string[] = [];
    const blocked: string[] = [];
    let rounds = 0;
    const loop = (async () => {
      while (!stop) {
        rounds++;
        const wrong = await matrix(
          [
            { from: 'a1', src: a1!.peer, to: 'b1', host: b1!.attachment.ipv6, allowed: false },
            { from: 'a1', src: a1!.peer, to: 'b1 v4', host: b1!.attachment.ipv4, allowed: false },
            { from: 'b1', src: b1!.peer, to: 'a2', host: a2!.attachment.ipv6, allowed: false },
            { from: 'b1', src: b1!.peer, to: 'outside', host: '198.51.100.2', allowed: false },
            { from: 'a1', src: a1!.peer, to: 'host 22', host: orgs.org_a!.gateway6, port: 22, allowed: false },
            { from: 'a1', src: a1!.peer, to: 'a2', host: a2!.attachment.ipv6, allowed: true },
            { from: 'b1', src: b1!.peer, to: 'host', host: '198.51.100.1', port: 9090, allowed: false },
          ],
          300,
        );
        for (const w of wrong) (w.includes('expected blocked') ? leaks : blocked).push(w);
      }
    })();
    try {
      for (let i = 0; i < 5; i++) {
        await lab.restartAgent(h1);
        for (let k = 0; k < 5; k++) await h1.agent.call('reapply');
      }
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      stop = true;
      await loop;
    }
    assert.ok(rounds >= 3, `${rounds} probe rounds ran`);
    assert.deepEqual(leaks, [], 'nothing blocked got through at any moment');
    assert.deepEqual(blocked, [], 'nothing allowed was cut off either');
  });

  test('egress can be switched per org', async () => {
    const probe = () => matrix([{ from: 'b1', src: I.b1!.peer, to: 'outside', host: '198.51.100.2', allowed: true }]);
    await h1.agent.call('ensure', { orgId: 'org_b', options: { egress: 'allow' } });
    assert.deepEqual(await probe(), []);
    await h1.agent.call('ensure', { orgId: 'org_b', options: { egress: 'deny' } });
    assert.equal((await probe()).length, 2, 'denied again (TCP and UDP)');
  });

  test('detach removes the instance and closes its port', async () => {
    const extra = await lab.instance(h1, 'org_a', newId('instance'));
    assert.deepEqual(await matrix([{ from: 'a1', src: I.a1!.peer, to: 'extra', host: extra.attachment.ipv6, allowed: true }]), []);
    await extra.peer.stop();
    await h1.agent.call('detach', { instanceId: extra.id });
    const ns = (await run(['ip', 'netns', 'list'])).stdout;
    assert.ok(!ns.includes(extra.attachment.netnsName));
    const rules = (await run(['ip', 'netns', 'exec', h1.netns, 'nft', 'list', 'table', 'bridge', 'ward'])).stdout;
    assert.ok(!rules.includes(extra.attachment.hostInterface), 'its chain is gone');
    assert.ok(!(await run(['ip', '-n', I.a1!.attachment.netnsName, 'neigh', 'show'])).stdout.includes(extra.attachment.ipv6), 'neighbours forgot it');
  });
});

describe('WireGuard mesh between hosts and for people', { skip, timeout: 240_000 }, () => {
  const lab = new NetLab();
  let m1: Host;
  let m2: Host;
  let lapNs: string;
  let laptop: Rpc;
  const I: Record<string, Instance> = {};
  const person = generateWireGuardKeyPair();
  let personAddress = '';
  let wgMode = '';
  const prefixOf = (org: string) => deriveOrgPrefix(lab.prefix, org);

  before(async () => {
    await lab.setUp();
    m1 = await lab.host('m1', 1, { wireguardPort: 51820 });
    m2 = await lab.host('m2', 2, { wireguardPort: 51820 });
    lapNs = await lab.netns('lap');
    // The hosts' LAN, and the laptop's way to its gateway host (m1).
    await lab.link(m1.netns, ['192.0.2.1/24'], m2.netns, ['192.0.2.2/24'], 'm');
    await lab.link(m1.netns, ['203.0.113.1/24'], lapNs, ['203.0.113.2/24'], 'l');
    // Each agent brings up its WireGuard interface and registers its public key and endpoint.
    const k1 = await m1.agent.call<{ publicKey: string; mode: string }>('wgUp');
    const k2 = await m2.agent.call<{ publicKey: string; mode: string }>('wgUp');
    wgMode = k1.mode;
    for (const [name, host, org] of [['a1', m1, 'org_a'], ['b1', m1, 'org_b'], ['a2', m2, 'org_a'], ['b2', m2, 'org_b']] as const) {
      await host.agent.call('ensure', { orgId: org, options: { ipv6Prefix: prefixOf(org) } });
      I[name] = await lab.instance(host, org, newId('instance'));
    }
    personAddress = formatPrefix(peopleSlice(parseOrgPrefix(prefixOf('org_a')), 1)).replace('::/64', '::a');
    // The control plane's part: one network map per host, from hosts, orgs, instances and people.
    const hosts = [
      { id: 'hst_m1', index: 1, publicKey: k1.publicKey, endpoint: '192.0.2.1:51820' },
      { id: 'hst_m2', index: 2, publicKey: k2.publicKey, endpoint: '192.0.2.2:51820' },
    ];
    const instances = Object.entries(I).map(([name, i]) => ({
      hostId: i.host === m1 ? 'hst_m1' : 'hst_m2',
      orgId: i.orgId,
      app: i.orgId === 'org_a' ? 'web' : 'secret',
      instanceId: i.id,
      region: name.endsWith('1') ? 'ams' : 'fra',
      ipv6: i.attachment.ipv6,
    }));
    const orgs = ['org_a', 'org_b'].map((orgId) => ({ orgId, prefix6: prefixOf(orgId), egress: 'allow' as const }));
    const people = [{ orgId: 'org_a', publicKey: person.publicKey, address: personAddress, gatewayHostId: 'hst_m1' }];
    for (const [host, id] of [[m1, 'hst_m1'], [m2, 'hst_m2']] as const) {
      const map = buildNetworkMap({ hostId: id, hosts, orgs, people, instances });
      for (const o of map.orgs) await host.agent.call('ensure', { orgId: o.orgId, options: { ipv6Prefix: o.prefix6, egress: o.egress } });
      await host.agent.call('wgConfigure', { peers: map.peers });
      await host.agent.call('records', { records: map.records });
    }
    // The laptop: wireguard-go with the file `ward wireguard create` writes, applied as wg-quick would.
    const gw = (await m1.agent.call<OrgView[]>('orgs')).find((o) => o.orgId === 'org_a')!;
    const conf = wgQuickConfig({
      name: 'laptop',
      org: 'org_a',
      privateKey: person.privateKey,
      address: personAddress,
      dns: gw.gateway6,
      allowedIPs: [prefixOf('org_a')],
      gatewayPublicKey: k1.publicKey,
      gatewayEndpoint: '203.0.113.1:51820',
    });
    const file = join(lab.dir, 'laptop.conf');
    await writeFile(file, conf, { mode: 0o600 });
    const ifname = `${lab.prefix}lap`;
    const wgGo = (await import('../../src/exec/index.ts')).start(lab.inNs(`/run/netns/${lapNs}`, ['wireguard-go', '-f', ifname]), { stdio: 'ignore', detached: true });
    lab.children.push(wgGo);
    for (let i = 0; i < 250 && (await run(['ip', '-n', lapNs, 'link', 'show', ifname], { allowFailure: true })).code !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    const stripped = join(lab.dir, 'laptop.wg');
    await writeFile(stripped, (await run(['wg-quick', 'strip', file])).stdout, { mode: 0o600 });
    await run(lab.inNs(`/run/netns/${lapNs}`, ['wg', 'setconf', ifname, stripped]));
    const address = /^Address = (.+)$/m.exec(conf)![1]!;
    await run(['ip', '-n', lapNs, 'addr', 'add', address, 'dev', ifname]);
    await run(['ip', '-n', lapNs, 'link', 'set', ifname, 'mtu', '1420', 'up']);
    await run(['ip', '-n', lapNs, 'route', 'add', prefixOf('org_a'), 'dev', ifname]);
    laptop = await lab.peerIn(lapNs, 'laptop');
  });

  after(async () => {
    await lab.cleanup();
    assert.deepEqual(await lab.leftovers(), [], 'nothing with the prefix is left, wireguard-go included');
  });

  test('each host owns its key: the private key stays in a 0600 file, WireGuard runs as the host allows', async () => {
    const keyFile = join(m1.stateDir, 'wireguard', `${lab.prefix}wm1.key`);
    const { statSync } = await import('node:fs');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const dump = (await run(['ip', 'netns', 'exec', m1.netns, 'wg', 'show', `${lab.prefix}wm1`, 'allowed-ips'])).stdout;
    assert.ok(!dump.includes(readFileSync(keyFile, 'utf8').trim()), 'not printed by wg show');
    assert.ok(['kernel', 'userspace'].includes(wgMode), wgMode);
    // The peer host may send only from its own slices of the orgs both serve.
    const a = parseOrgPrefix(prefixOf('org_a'));
    const b = parseOrgPrefix(prefixOf('org_b'));
    const expected = [formatPrefix(hostSlice(a, 2)), formatPrefix(hostSlice(b, 2))].sort();
    const line = dump.split('\n').find((l) => l.includes('/64'))!;
    assert.deepEqual(line.split('\t')[1]!.split(' ').sort(), expected);
  });

  test('the cross-host matrix: an instance reaches its org on the other host and nothing of another org', async () => {
    const cases: Case[] = [];
    for (const f of Object.keys(I)) {
      for (const t of Object.keys(I)) {
        if (f === t) continue;
        cases.push({ from: f, src: I[f]!.peer, to: t, host: I[t]!.attachment.ipv6, allowed: I[f]!.orgId === I[t]!.orgId });
      }
    }
    assert.deepEqual(await matrix(cases, 1500), []);
  });

  test('a laptop with the generated wg-quick file resolves app.internal and reaches the app, and no other org', async () => {
    const gw = (await m1.agent.call<OrgView[]>('orgs')).find((o) => o.orgId === 'org_a')!;
    const web = await laptop.call<{ rcode: number; answers: { data: string }[] }>('dns', { server: gw.gateway6, name: 'web.internal', type: TYPE_AAAA, timeoutMs: 3000 });
    assert.deepEqual(web.answers.map((x) => x.data).sort(), [I.a1!.attachment.ipv6, I.a2!.attachment.ipv6].sort());
    const secret = await laptop.call<{ rcode: number }>('dns', { server: gw.gateway6, name: 'secret.internal', type: TYPE_AAAA, timeoutMs: 3000 });
    assert.equal(secret.rcode, RCODE_NXDOMAIN);
    assert.deepEqual(
      await matrix(
        [
          { from: 'laptop', src: laptop, to: 'a1 (gateway host)', host: I.a1!.attachment.ipv6, allowed: true },
          { from: 'laptop', src: laptop, to: 'a2 (other host)', host: I.a2!.attachment.ipv6, allowed: true },
        ],
        3000,
      ),
      [],
    );
    // The person widens their own side to everything: the gateway still forwards only their org.
    const ifname = `${lab.prefix}lap`;
    const gwKey = /^PublicKey = (.+)$/m.exec((await run(['wg-quick', 'strip', join(lab.dir, 'laptop.conf')])).stdout)![1]!;
    await run(lab.inNs(`/run/netns/${lapNs}`, ['wg', 'set', ifname, 'peer', gwKey, 'allowed-ips', '::/0']));
    await run(['ip', '-n', lapNs, '-6', 'route', 'add', 'fd00::/8', 'dev', ifname]);
    const gwB = (await m1.agent.call<OrgView[]>('orgs')).find((o) => o.orgId === 'org_b')!;
    assert.deepEqual(
      await matrix(
        [
          { from: 'laptop', src: laptop, to: 'b1', host: I.b1!.attachment.ipv6, allowed: false },
          { from: 'laptop', src: laptop, to: 'b2', host: I.b2!.attachment.ipv6, allowed: false },
          { from: 'laptop', src: laptop, to: 'org_b resolver', host: gwB.gateway6, port: 53, allowed: false },
          { from: 'laptop', src: laptop, to: 'host service', host: gw.gateway6, port: 22, allowed: false },
          { from: 'laptop', src: laptop, to: 'a1 still', host: I.a1!.attachment.ipv6, allowed: true },
        ],
        1500,
      ),
      [],
    );
  });
});

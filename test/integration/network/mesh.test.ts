// The WireGuard mesh and the people's gateway as a multi-host Ward runs them, as root: a control plane
// (`ward server --roles control`, in this process) and two agents in namespaces standing in for hosts
// (host-agent.ts with `mesh`), all on one store (the control plane's SQLite file). The agents register
// their keys and endpoints and get distinct slice indices from the control plane (the same ones after
// a restart), read their assignments through the real control-plane link (an org's custom prefix
// included), and build the mesh from the control plane's network map alone. Then the cross-host matrix,
// cross-host `.internal`, and a person's laptop running wireguard-go with the file `ward wireguard
// create` wrote: it reaches its org and nothing else, and stops working once the peer is removed.
// Everything is removed afterwards, even on failure (NetLab.cleanup), and the after-hook checks it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newId, newPlacement, toTimestamp } from '../../../src/core/index.ts';
import { run, start } from '../../../src/exec/index.ts';
import { resolveServerConfig } from '../../../src/config/index.ts';
import { startServer, type RunningServer } from '../../../src/server/index.ts';
import { deriveOrgPrefix, formatPrefix, hostSlice, parseOrgPrefix, peopleSlice, prefixContains, type Attachment, type OrgView } from '../../../src/agent/network/index.ts';
import { RCODE_NXDOMAIN, TYPE_AAAA } from '../../../src/agent/network/dns/codec.ts';
import { aRelease } from '../../../src/store/runtime.contract.ts';
import { NetLab, cannotRunNetworkTests, matrix, type Case, type Host, type Instance, type Rpc } from './lab.ts';
import { ward } from '../../e2e/ward-cli.ts';

const skip = cannotRunNetworkTests();
const PASSWORD = 'correct horse battery staple';
const CUSTOM_PREFIX = 'fd5e:1c2d:3b4a::/48';

describe('WireGuard mesh and people from the control plane (two agents on one store)', { skip, timeout: 300_000 }, () => {
  const lab = new NetLab();
  let server: RunningServer | undefined;
  let env: Record<string, string> = {};
  const hosts: Record<string, Host> = {};
  const hostIds: Record<string, string> = {};
  const I: Record<string, Instance> = {};
  let orgIds: Record<string, string> = {};
  let lapNs = '';
  let laptop: Rpc;
  let confFile = '';

  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const r = await fetch(server!.apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined };
  };
  let mkHost: (name: string, address: string, beforeAgent?: (netns: string) => Promise<void>) => Promise<void>;
  const releases: Record<string, string> = {};
  /** place is the scheduler's part, in the store: one instance of the app on the host. */
  const place = async (app: string, h: string) => {
    const a = (await server!.store.apps.findByName(`${lab.prefix}-${app}`))!;
    const now = toTimestamp(new Date());
    await server!.store.instances.create(newPlacement({ id: newId('instance'), appId: a.id, releaseId: releases[app]!, hostId: hostIds[h]!, region: h === 'm1' ? 'ams' : 'fra', at: now }));
  };
  /**
   * attachAll is the agent's part: it attaches its assignments (the org's settings from the control
   * plane) and reports them running with their addresses, as its reconcile would, and publishes its own
   * running instances to its resolver (Agent#publishDns); the other hosts' come from the map.
   */
  const attachAll = async (h: string) => {
    const host = hosts[h]!;
    for (const at of await host.agent.call<Attachment[]>('assignments')) {
      if (Object.values(I).some((i) => i.id === at.instanceId)) continue;
      I[`${at.orgId === orgIds.acme ? 'a' : 'b'}${h.slice(1)}`] = await lab.peerFor(host, at);
      await host.agent.call('report', { instanceId: at.instanceId, report: { observedState: 'running', privateIpv6: at.ipv6, privateIpv4: at.ipv4 } });
    }
    const appOf = (i: Instance) => `${lab.prefix}-${i.orgId === orgIds.acme ? 'web' : 'secret'}`;
    const local = Object.values(I).filter((i) => i.host === host);
    await host.agent.call('records', { records: local.map((i) => ({ orgId: i.orgId, app: appOf(i), instanceId: i.id, region: h === 'm1' ? 'ams' : 'fra', ipv6: i.attachment.ipv6 })) });
  };
  const syncAll = async () => {
    for (const h of Object.values(hosts)) await h.agent.call('meshSync');
  };

  before(async () => {
    await lab.setUp();
    const dataDir = join(lab.dir, 'control');
    // The control plane alone: no agent in this process, so people's gateway is a registered host.
    const config = resolveServerConfig({
      flags: { 'data-dir': dataDir, 'api-listen': '127.0.0.1:0', roles: 'control', 'log-level': process.env.WARD_TEST_LOG ?? 'silent', hostname: `${lab.prefix}-cp` },
      env: {},
      cwd: process.cwd(),
    });
    server = await startServer(config);
    const signup = await fetch(`${server.apiUrl}/v1/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'owner@example.com', password: PASSWORD, org: 'acme' }),
    });
    const owner = ((await signup.json()) as { session: { token: string } }).session.token;
    assert.equal((await api('POST', '/v1/orgs', owner, { name: 'globex' })).status, 201);
    const tok = await api('POST', '/v1/tokens', owner, { name: 'mesh-test', scope: 'deploy', org: 'acme' });
    assert.equal(tok.status, 201, JSON.stringify(tok.body));
    env = { WARD_API_URL: server.apiUrl, WARD_API_TOKEN: tok.body.secret, WARD_CONFIG_DIR: lab.dir, HOME: lab.dir };
    const ownerEnv = { ...env, WARD_API_TOKEN: owner };
    // globex picks its own prefix before its first deploy, through the CLI.
    const set = await ward(['orgs', 'network', 'set', '--org', 'globex', '--prefix', CUSTOM_PREFIX, '--json'], ownerEnv);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(JSON.parse(set.stdout).prefix, CUSTOM_PREFIX);
    orgIds = {
      acme: (await api('GET', '/v1/orgs/acme', owner)).body.org.id,
      globex: (await api('GET', '/v1/orgs/globex', owner)).body.org.id,
    };

    // Two hosts on one LAN, each registering with the control plane's store as its agent starts.
    mkHost = async (name: string, address: string, beforeAgent?: (netns: string) => Promise<void>) => {
      hostIds[name] = newId('host');
      hosts[name] = await lab.host(name, 0, {
        wireguardPort: 51820,
        mesh: { dataDir, hostId: hostIds[name]!, hostName: `${lab.prefix}-${name}`, endpoint: `${address}:51820` },
        ...(beforeAgent ? { beforeAgent } : {}),
      });
    };
    await mkHost('m1', '192.0.2.1');
    await mkHost('m2', '192.0.2.2', async (m2ns) => {
      await lab.link(hosts.m1!.netns, ['192.0.2.1/24'], m2ns, ['192.0.2.2/24'], 'm');
    });

    // The scheduler's part, in the store: web (acme) and secret (globex) on both hosts.
    const store = server.store;
    const now = toTimestamp(new Date());
    for (const [app, org] of [['web', 'acme'], ['secret', 'globex']] as const) {
      assert.equal((await api('POST', '/v1/apps', owner, { name: `${lab.prefix}-${app}`, org })).status, 201);
      const a = (await store.apps.findByName(`${lab.prefix}-${app}`))!;
      const rel = aRelease(a.id, 1, { createdAt: now, updatedAt: now });
      await store.releases.create(rel);
      releases[app] = rel.id;
      for (const h of ['m1', 'm2']) await place(app, h);
    }
    for (const h of ['m1', 'm2']) await attachAll(h);
    for (const h of Object.values(hosts)) await h.agent.call('meshStart');
    // Both again: the first host synced before the second had reported its instances.
    await syncAll();
    lapNs = await lab.netns('lap');
    await lab.link(hosts.m1!.netns, ['203.0.113.1/24'], lapNs, ['203.0.113.2/24'], 'l');
    await run(['ip', '-n', lapNs, 'route', 'add', 'default', 'via', '203.0.113.1']);
    laptop = await lab.peerIn(lapNs, 'laptop');
  });

  after(async () => {
    try {
      await server?.close();
    } finally {
      await lab.cleanup();
    }
    assert.deepEqual(await lab.leftovers(), [], 'nothing with the prefix is left, wireguard-go included');
  });

  test('hosts register their keys and endpoints and get distinct slice indices, the same after a restart', async () => {
    const m1 = await hosts.m1!.agent.call<{ index: number; hostIndex: number; publicKey: string }>('mesh');
    const m2 = await hosts.m2!.agent.call<{ index: number; hostIndex: number; publicKey: string }>('mesh');
    assert.deepEqual([m1.index, m2.index], [1, 2]);
    assert.equal(m1.hostIndex, 1, 'the network took the assigned index');
    assert.equal(m2.hostIndex, 2);
    const rows = await server!.store.hostMesh.list();
    assert.deepEqual(rows.map((r) => [r.hostId, r.index, r.publicKey, r.endpoint]), [
      [hostIds.m1, 1, m1.publicKey, '192.0.2.1:51820'],
      [hostIds.m2, 2, m2.publicKey, '192.0.2.2:51820'],
    ]);
    // The private key stays on the host, 0600; the store has only the public half.
    const keyFile = join(hosts.m1!.stateDir, 'wireguard', `${lab.prefix}wm1.key`);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.ok(!JSON.stringify(rows).includes(readFileSync(keyFile, 'utf8').trim()));
    // An agent that restarts (SIGKILL, then a new process over the same state) gets its index back, and
    // the mesh carries on through it: probes across the tunnel, all along, find no leak and no gap.
    let restarting = true;
    const wrong: string[] = [];
    let rounds = 0;
    const probing = (async () => {
      while (restarting || rounds === 0) {
        rounds++;
        wrong.push(
          ...(await matrix(
            [
              { from: 'a1', src: I.a1!.peer, to: 'a2', host: I.a2!.attachment.ipv6, allowed: true },
              { from: 'b1', src: I.b1!.peer, to: 'a2', host: I.a2!.attachment.ipv6, allowed: false },
              { from: 'b1', src: I.b1!.peer, to: 'b2', host: I.b2!.attachment.ipv6, allowed: true },
            ],
            1500,
          )),
        );
      }
    })();
    try {
      await lab.restartAgent(hosts.m2!);
      const again = await hosts.m2!.agent.call<{ index: number; publicKey: string }>('mesh');
      assert.deepEqual([again.index, again.publicKey], [2, m2.publicKey]);
      await hosts.m2!.agent.call('meshStart');
    } finally {
      restarting = false;
      await probing;
    }
    assert.deepEqual(wrong, [], `over ${rounds} rounds of probes`);
  });

  test('a custom org prefix is what the agents use; AllowedIPs are the peer host\'s slices of the orgs both serve', async () => {
    const custom = parseOrgPrefix(CUSTOM_PREFIX);
    assert.ok(prefixContains(hostSlice(custom, 1), I.b1!.attachment.ipv6), I.b1!.attachment.ipv6);
    assert.ok(prefixContains(hostSlice(custom, 2), I.b2!.attachment.ipv6), I.b2!.attachment.ipv6);
    const acme = parseOrgPrefix(deriveOrgPrefix('ward', orgIds.acme!));
    assert.ok(prefixContains(hostSlice(acme, 2), I.a2!.attachment.ipv6));
    const dump = (await run(['ip', 'netns', 'exec', hosts.m1!.netns, 'wg', 'show', `${lab.prefix}wm1`, 'allowed-ips'])).stdout;
    const line = dump.split('\n').find((l) => l.includes('/64'))!;
    assert.deepEqual(line.split('\t')[1]!.split(' ').sort(), [formatPrefix(hostSlice(acme, 2)), formatPrefix(hostSlice(custom, 2))].sort());
  });

  test('the cross-host matrix from the control plane\'s map: each org reaches itself on the other host, nothing else', async () => {
    const cases: Case[] = [];
    for (const f of Object.keys(I)) {
      for (const t of Object.keys(I)) {
        if (f !== t) cases.push({ from: f, src: I[f]!.peer, to: t, host: I[t]!.attachment.ipv6, allowed: I[f]!.orgId === I[t]!.orgId });
      }
    }
    assert.deepEqual(await matrix(cases, 1500), []);
  });

  test('<app>.internal names the app\'s instances on every host, for its own org only', async () => {
    const gw = (await hosts.m1!.agent.call<OrgView[]>('orgs')).find((o) => o.orgId === orgIds.acme)!;
    const web = await I.a1!.peer.call<{ rcode: number; answers: { data: string }[] }>('dns', { server: gw.gateway6, name: `${lab.prefix}-web.internal`, type: TYPE_AAAA, timeoutMs: 3000 });
    assert.deepEqual(web.answers.map((x) => x.data).sort(), [I.a1!.attachment.ipv6, I.a2!.attachment.ipv6].sort());
    const other = await I.a1!.peer.call<{ rcode: number }>('dns', { server: gw.gateway6, name: `${lab.prefix}-secret.internal`, type: TYPE_AAAA, timeoutMs: 3000 });
    assert.equal(other.rcode, RCODE_NXDOMAIN);
  });

  test('a person\'s laptop with the file `ward wireguard create` wrote reaches its org only, until the peer is removed', async () => {
    confFile = join(lab.dir, 'laptop.conf');
    const created = await ward(['wireguard', 'create', '--org', 'acme', '--name', 'laptop', '--output', confFile], env);
    assert.equal(created.code, 0, created.stderr);
    const conf = readFileSync(confFile, 'utf8');
    const field = (k: string) => new RegExp(`^${k} = (.+)$`, 'm').exec(conf)?.[1];
    // The gateway is the first registered host, with the key and endpoint it registered.
    assert.equal(field('Endpoint'), '192.0.2.1:51820');
    assert.equal(field('PublicKey'), (await hosts.m1!.agent.call<{ publicKey: string }>('mesh')).publicKey);
    const acmePrefix = deriveOrgPrefix('ward', orgIds.acme!);
    assert.equal(field('AllowedIPs'), acmePrefix);
    const address = field('Address')!.replace(/\/128$/, '');
    assert.ok(prefixContains(peopleSlice(parseOrgPrefix(acmePrefix), 1), address), address);
    // The agents learn of the peer on their next sync (here: now).
    await syncAll();

    // The laptop: wireguard-go, configured from the file as wg-quick would.
    const ifname = `${lab.prefix}lap`;
    const wgGo = start(lab.inNs(`/run/netns/${lapNs}`, ['wireguard-go', '-f', ifname]), { stdio: 'ignore', detached: true });
    lab.children.push(wgGo);
    for (let i = 0; i < 250 && (await run(['ip', '-n', lapNs, 'link', 'show', ifname], { allowFailure: true })).code !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    const stripped = join(lab.dir, 'laptop.wg');
    await writeFile(stripped, (await run(['wg-quick', 'strip', confFile])).stdout, { mode: 0o600 });
    await run(lab.inNs(`/run/netns/${lapNs}`, ['wg', 'setconf', ifname, stripped]));
    await run(['ip', '-n', lapNs, 'addr', 'add', field('Address')!, 'dev', ifname]);
    await run(['ip', '-n', lapNs, 'link', 'set', ifname, 'mtu', '1420', 'up']);
    await run(['ip', '-n', lapNs, 'route', 'add', acmePrefix, 'dev', ifname]);

    const dns = field('DNS')!.split(',')[0]!.trim();
    const web = await laptop.call<{ rcode: number; answers: { data: string }[] }>('dns', { server: dns, name: `${lab.prefix}-web.internal`, type: TYPE_AAAA, timeoutMs: 3000 });
    assert.deepEqual(web.answers.map((x) => x.data).sort(), [I.a1!.attachment.ipv6, I.a2!.attachment.ipv6].sort());
    // The person widens their own side to every ULA: the gateway still forwards only their org.
    const gwKey = field('PublicKey')!;
    await run(lab.inNs(`/run/netns/${lapNs}`, ['wg', 'set', ifname, 'peer', gwKey, 'allowed-ips', 'fc00::/7']));
    await run(['ip', '-n', lapNs, '-6', 'route', 'add', 'fc00::/7', 'dev', ifname]);
    assert.deepEqual(
      await matrix(
        [
          { from: 'laptop', src: laptop, to: 'a1 (gateway host)', host: I.a1!.attachment.ipv6, allowed: true },
          { from: 'laptop', src: laptop, to: 'a2 (other host)', host: I.a2!.attachment.ipv6, allowed: true },
          { from: 'laptop', src: laptop, to: 'b1', host: I.b1!.attachment.ipv6, allowed: false },
          { from: 'laptop', src: laptop, to: 'b2', host: I.b2!.attachment.ipv6, allowed: false },
          { from: 'laptop', src: laptop, to: 'host service', host: dns, port: 22, allowed: false },
        ],
        3000,
      ),
      [],
    );

    // Removed: the gateway drops the key on its next sync, and nothing gets through any more.
    const removed = await ward(['wireguard', 'remove', 'laptop', '--org', 'acme'], env);
    assert.equal(removed.code, 0, removed.stderr);
    await syncAll();
    const peers = (await run(['ip', 'netns', 'exec', hosts.m1!.netns, 'wg', 'show', `${lab.prefix}wm1`, 'peers'])).stdout;
    assert.ok(!peers.includes((await server!.store.hostMesh.list())[0]!.publicKey), 'not itself');
    assert.equal(peers.trim().split('\n').filter(Boolean).length, 1, 'only the other host is left');
    assert.deepEqual(
      await matrix(
        [
          { from: 'laptop', src: laptop, to: 'a1 (gateway host)', host: I.a1!.attachment.ipv6, allowed: false },
          { from: 'laptop', src: laptop, to: 'a2 (other host)', host: I.a2!.attachment.ipv6, allowed: false },
        ],
        1500,
      ),
      [],
    );
  });

  test('a host that joins later gets the next index, and the others add it to the mesh at their next sync', async () => {
    await mkHost('m3', '198.18.0.3', async (m3ns) => {
      await lab.link(hosts.m1!.netns, ['198.18.0.1/24'], m3ns, ['198.18.0.3/24'], 'n');
    });
    const m3 = await hosts.m3!.agent.call<{ index: number; hostIndex: number }>('mesh');
    assert.deepEqual([m3.index, m3.hostIndex], [3, 3]);
    await place('web', 'm3');
    await attachAll('m3');
    await hosts.m3!.agent.call('meshStart');
    await syncAll();
    const acme = parseOrgPrefix(deriveOrgPrefix('ward', orgIds.acme!));
    assert.ok(prefixContains(hostSlice(acme, 3), I.a3!.attachment.ipv6), I.a3!.attachment.ipv6);
    const dump = (await run(['ip', 'netns', 'exec', hosts.m1!.netns, 'wg', 'show', `${lab.prefix}wm1`, 'allowed-ips'])).stdout;
    assert.ok(dump.split('\n').some((l) => l.split('\t')[1] === formatPrefix(hostSlice(acme, 3))), dump);
    assert.deepEqual(
      await matrix(
        [
          { from: 'a3', src: I.a3!.peer, to: 'a1', host: I.a1!.attachment.ipv6, allowed: true },
          { from: 'a1', src: I.a1!.peer, to: 'a3', host: I.a3!.attachment.ipv6, allowed: true },
          { from: 'a3', src: I.a3!.peer, to: 'b1', host: I.b1!.attachment.ipv6, allowed: false },
          { from: 'b1', src: I.b1!.peer, to: 'a3', host: I.a3!.attachment.ipv6, allowed: false },
        ],
        1500,
      ),
      [],
    );
  });
});

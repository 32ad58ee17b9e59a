// The agent's private networking end to end, as root, with real crun containers: a `ward server` whose
// network serves the internal resolver. Two orgs deploy through the API; inside an instance
// /etc/resolv.conf points at its org's resolver, `<app>.internal` resolves for its own org's apps only
// (another org's app is NXDOMAIN), and an instance reaches its own org's instances and nothing of the
// other org's.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { wireGuardPublicKey } from '../../src/core/index.ts';
import { deriveOrgPrefix, hostSlice, parseOrgPrefix, peopleSlice, prefixContains } from '../../src/agent/network/index.ts';
import { gateway6 } from '../../src/agent/network/addresses.ts';
import { cannotRunContainers } from './runtime-harness.ts';
import { settled, shellImage, startNode, waitFor, type WardNode } from './agent-fixture.ts';
import { ward } from '../e2e/ward-cli.ts';

const skip = cannotRunContainers();


const SERVE = 'echo ok > /tmp/index.html; exec /bin/busybox httpd -f -p 8080 -h /tmp';

const WARD_TOML = (app: string) => ({
  app,
  http_service: { internal_port: 8080 },
  restart: { policy: 'on-failure' },
  resources: { memory: '64MB', cpus: 0.25 },
});

describe('agent: private network, internal DNS and org isolation (crun)', { skip }, () => {
  let node: WardNode;
  const ins: Record<string, any> = {};

  const deploy = async (app: string, org: string, archive: Buffer) => {
    assert.equal((await node.api('POST', '/v1/apps', { name: app, org })).status, 201);
    const up = await node.upload(app, archive, 'oci-archive');
    assert.equal(up.status, 201, JSON.stringify(up.body));
    const d = await node.api('POST', `/v1/apps/${app}/deploy`, { image: up.body.image.digest, config: WARD_TOML(app) });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    const done = await settled(node, app, 1);
    assert.equal(done.release.status, 'succeeded', done.release.reason);
    ins[app] = done.instances[0];
  };
  const sh = async (app: string, script: string) => {
    const r = await node.h.runtime.exec(ins[app].id, ['/bin/busybox', 'sh', '-c', script], { timeoutMs: 15_000 });
    return { code: r.code, out: `${r.stdout}${r.stderr}` };
  };
  const lookup = (app: string, name: string) => sh(app, `/bin/busybox nslookup -type=AAAA ${name}`);

  before(async () => {
    node = await startNode({ dns: true });
    assert.equal((await node.api('POST', '/v1/orgs', { name: 'globex' })).status, 201);
    const archive = await shellImage(SERVE);
    await deploy('web', 'acme', archive);
    await deploy('db', 'acme', archive);
    await deploy('secret', 'globex', archive);
  });
  after(async () => {
    await node?.cleanup();
  });

  test('/etc/resolv.conf inside an instance names its org\'s resolver', async () => {
    const orgs = await node.h.network.orgs();
    const acme = (await node.api('GET', '/v1/orgs/acme')).body.org.id;
    const view = orgs.find((o) => o.orgId === acme)!;
    const r = await sh('web', 'cat /etc/resolv.conf');
    assert.equal(r.code, 0, r.out);
    const servers = [...r.out.matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(servers, [view.gateway6, view.gateway4]);
  });

  test('<app>.internal resolves for the own org, NXDOMAIN for another org\'s app', async () => {
    // The agent publishes instances once they report running: wait for the last deployed one.
    const db = await waitFor('db.internal to resolve from web', async () => {
      const r = await lookup('web', 'db.internal');
      return r.out.includes(ins.db.private_ip) ? r : undefined;
    }, 15_000);
    assert.equal(db.code, 0, db.out);
    const self = await lookup('db', 'web.internal');
    assert.ok(self.out.includes(ins.web.private_ip), self.out);
    const vm = await lookup('web', `${ins.db.id}.vm.db.internal`);
    assert.ok(vm.out.includes(ins.db.private_ip), vm.out);
    const other = await lookup('web', 'secret.internal');
    assert.match(other.out, /NXDOMAIN/, other.out);
    assert.ok(!other.out.includes(ins.secret.private_ip), other.out);
    // And the other way round: globex sees its own app, none of acme's.
    const own = await waitFor('secret.internal from secret', async () => {
      const r = await lookup('secret', 'secret.internal');
      return r.out.includes(ins.secret.private_ip) ? r : undefined;
    }, 15_000);
    assert.equal(own.code, 0, own.out);
    assert.match((await lookup('secret', 'web.internal')).out, /NXDOMAIN/);
  });

  test('an instance reaches its own org\'s instances by name and address, nothing of another org', async () => {
    // busybox nc, not wget (the static busybox's wget crashes on its name lookup even for an address).
    const get = async (from: string, host: string) => {
      const r = await sh(from, `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 ${host.replace(/^\[|\]$/g, '')} 8080`);
      return { code: r.code === 0 && /200 OK/.test(r.out) ? 0 : r.code || 1, out: r.out.split('\r\n\r\n').slice(1).join('') };
    };
    // By name: the address db.internal gives (the image's busybox is static: no getaddrinfo to lean on).
    const named = [...(await lookup('web', 'db.internal')).out.matchAll(/^Address:\s+(fd[0-9a-f:]+)$/gm)].map((m) => m[1]);
    assert.deepEqual(named, [ins.db.private_ip]);
    const byName = await get('web', `[${named[0]}]`);
    assert.deepEqual([byName.code, byName.out.trim()], [0, 'ok'], 'web → db.internal');
    assert.deepEqual((await get('web', `[${ins.db.private_ip}]`)).out.trim(), 'ok');
    assert.deepEqual((await get('web', ins.db.private_ipv4)).out.trim(), 'ok');
    for (const [from, to] of [['web', 'secret'], ['db', 'secret'], ['secret', 'web'], ['secret', 'db']] as const) {
      for (const addr of [`[${ins[to].private_ip}]`, ins[to].private_ipv4]) {
        const r = await get(from, addr);
        assert.notEqual(r.code, 0, `${from} → ${to} ${addr} must be blocked: ${r.out}`);
      }
    }
  });

  test('ward orgs network set --egress deny: stored, audited, and applied on the host by the agent', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'ward-netcli-'));
    try {
      const t = await node.api('POST', '/v1/tokens', { name: 'netcli', scope: 'admin', org: 'acme' });
      assert.equal(t.status, 201, JSON.stringify(t.body));
      const env = { WARD_API_URL: node.server.apiUrl, WARD_API_TOKEN: t.body.secret, WARD_CONFIG_DIR: tmp, HOME: tmp };
      const set = await ward(['orgs', 'network', 'set', '--org', 'acme', '--egress', 'deny', '--json'], env);
      assert.equal(set.code, 0, set.stderr);
      const acme = (await node.api('GET', '/v1/orgs/acme')).body.org.id;
      assert.deepEqual(JSON.parse(set.stdout), { org: 'acme', prefix: deriveOrgPrefix('ward', acme), egress: 'deny', updated_at: JSON.parse(set.stdout).updated_at });
      await waitFor('the host to apply egress deny', async () => (await node.h.network.orgs()).find((o) => o.orgId === acme)?.egress === 'deny', 15_000);
      const show = await ward(['orgs', 'network', 'show', '--org', 'acme'], env);
      assert.match(show.stdout, /Egress\s+deny/);
      const audit = (await node.server.store.audit.list({ chain: acme })).filter((e) => e.action === 'org.network.update');
      assert.deepEqual(audit.map((e) => e.details), [{ egress: 'deny', previous: 'allow' }]);
      // Back to allow, for the rest of the suite.
      assert.equal((await ward(['orgs', 'network', 'set', '--org', 'acme', '--egress', 'allow'], env)).code, 0);
      await waitFor('the host to apply egress allow', async () => (await node.h.network.orgs()).find((o) => o.orgId === acme)?.egress === 'allow', 15_000);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  test('ward wireguard create/list/remove: key pair made by the CLI, a 0600 wg-quick file, audited', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'ward-wgcli-'));
    try {
      const t = await node.api('POST', '/v1/tokens', { name: 'wgcli', scope: 'deploy', org: 'acme' });
      assert.equal(t.status, 201, JSON.stringify(t.body));
      const env = { WARD_API_URL: node.server.apiUrl, WARD_API_TOKEN: t.body.secret, WARD_CONFIG_DIR: tmp, HOME: tmp };
      const file = join(tmp, 'acme.conf');
      const created = await ward(['wireguard', 'create', '--org', 'acme', '--name', 'alice-laptop', '--output', file], env);
      assert.equal(created.code, 0, created.stderr);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const conf = await readFile(file, 'utf8');
      const field = (k: string) => new RegExp(`^${k} = (.+)$`, 'm').exec(conf)?.[1];
      const acme = (await node.api('GET', '/v1/orgs/acme')).body.org.id;
      const prefix = deriveOrgPrefix('ward', acme);
      const p = parseOrgPrefix(prefix);
      const hostIndex = node.h.network.hostIndex;
      const address = field('Address')!.replace(/\/128$/, '');
      assert.ok(prefixContains(peopleSlice(p, hostIndex), address), `${address} in the people slice`);
      assert.equal(field('AllowedIPs'), prefix, 'the org prefix only');
      assert.equal(field('DNS'), `${gateway6(hostSlice(p, hostIndex))}, internal`);
      assert.equal(field('Endpoint'), `${node.h.prefix}-host:51820`);
      const listed = await ward(['wireguard', 'list', '--org', 'acme', '--json'], env);
      assert.equal(listed.code, 0, listed.stderr);
      const peers = JSON.parse(listed.stdout);
      assert.deepEqual(peers.map((x: any) => [x.name, x.address]), [['alice-laptop', address]]);
      // The server has the public key of the private key in the file, and nothing else of it.
      assert.equal(peers[0].public_key, wireGuardPublicKey(field('PrivateKey')!));
      assert.ok(!JSON.stringify(await node.server.store.wireguardPeers.list()).includes(field('PrivateKey')!));
      // The same name twice is refused; the file is never overwritten.
      const again = await ward(['wireguard', 'create', '--org', 'acme', '--name', 'alice-laptop', '--output', join(tmp, 'b.conf')], env);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already has a WireGuard peer named "alice-laptop"/);
      const stdoutConf = await ward(['wireguard', 'create', '--org', 'acme', '--name', 'bob'], env);
      assert.equal(stdoutConf.code, 0, stdoutConf.stderr);
      assert.match(stdoutConf.stdout, /^\[Interface\]$/m);
      const removed = await ward(['wireguard', 'remove', 'alice-laptop', '--org', 'acme'], env);
      assert.equal(removed.code, 0, removed.stderr);
      assert.deepEqual((await node.server.store.wireguardPeers.listForOrg(acme)).map((x) => x.name), ['bob']);
      assert.equal((await ward(['wireguard', 'remove', 'alice-laptop', '--org', 'acme'], env)).code, 1);
      const audit = (await node.server.store.audit.list({ chain: acme })).filter((e) => e.action.startsWith('wireguard.'));
      assert.deepEqual(audit.map((e) => [e.action, e.details.name]), [['wireguard.create', 'alice-laptop'], ['wireguard.create', 'bob'], ['wireguard.remove', 'alice-laptop']]);
      assert.ok(!JSON.stringify(audit).includes(field('PrivateKey')!), 'no private key in the audit log');
      // A viewer's read token lists but may not add.
      const r = await node.api('POST', '/v1/tokens', { name: 'wgread', scope: 'read', org: 'acme' });
      const ro = await ward(['wireguard', 'create', '--org', 'acme', '--name', 'eve', '--output', join(tmp, 'eve.conf')], { ...env, WARD_API_TOKEN: r.body.secret });
      assert.equal(ro.code, 1);
      assert.match(ro.stderr, /forbidden|not allow/i);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  test('an instance that stops leaves DNS', async () => {
    assert.equal((await node.api('DELETE', '/v1/apps/db')).status < 300, true);
    await waitFor('db.internal to go', async () => /NXDOMAIN/.test((await lookup('web', 'db.internal')).out), 20_000);
  });
});

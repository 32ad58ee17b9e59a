// A host's network agent for the tests, run inside a namespace that stands in for a host:
//   nsenter --net=/run/netns/<host> -- node host-agent.ts '<options json>'
// It builds what `ward agent` builds (BridgeNetwork, InternalResolver, WireGuardDevice), restores the
// host from its records at once (what an agent start does), and then obeys JSON commands on stdin, one
// per line, answering each with one JSON line on stdout: {id, ok, result | error}.
// With `mesh`, it is also the agent of a multi-host Ward: it opens the control plane's store (the same
// SQLite file, as an agent on another host shares the control plane's database), registers its host
// and its WireGuard key and endpoint before the network is restored (the control plane assigns the
// slice index), reads its assignments through the real control-plane link, and syncs the mesh.
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { BridgeNetwork, InternalResolver, MeshSync, WireGuardDevice, type Attachment, type BridgeNetworkOptions, type DnsRecord, type Upstream, type WireGuardPeer } from '../../../src/agent/network/index.ts';
import { StoreControlPlane } from '../../../src/agent/index.ts';
import { systemClock, type InstanceReport } from '../../../src/core/index.ts';
import { MeshControlPlane } from '../../../src/services/index.ts';
import { SqliteStore } from '../../../src/store/index.ts';

interface Options {
  network: BridgeNetworkOptions;
  upstreams: Upstream[];
  dnsPort?: number;
  wireguard?: { name: string; stateDir: string; listenPort: number };
  /** mesh: the control plane's SQLite data dir, this host's id, name and WireGuard endpoint. */
  mesh?: { dataDir: string; hostId: string; hostName: string; endpoint: string };
}

const options = JSON.parse(process.argv[2]!) as Options;
const resolver = new InternalResolver({ upstreams: options.upstreams, port: options.dnsPort ?? 53, timeoutMs: 1000 });
const network = new BridgeNetwork({ ...options.network, resolver });
const wg = options.wireguard ? new WireGuardDevice({ ...options.wireguard, mode: 'auto' }) : undefined;
const services: (Server | Socket)[] = [];
const store = options.mesh ? await SqliteStore.open({ dataDir: options.mesh.dataDir }) : undefined;
const link = store && new StoreControlPlane(store);
const mesh = store && wg && options.mesh
  ? new MeshSync({ link: new MeshControlPlane(store, systemClock), device: wg, network, resolver, endpoint: options.mesh.endpoint, intervalMs: 60_000 })
  : undefined;

const commands: Record<string, (args: any) => Promise<unknown>> = {
  ensure: (a: { orgId: string; options?: object }) => network.ensure(a.orgId, a.options),
  attach: (a: { instanceId: string; orgId: string }) => network.attach(a),
  detach: (a: { instanceId: string }) => network.detach(a.instanceId),
  attachments: () => network.attachments(),
  orgs: () => network.orgs(),
  reapply: () => network.reapply(),
  records: async (a: { records: DnsRecord[]; orgs?: { orgId: string; prefix6: string }[] }) => {
    for (const o of a.orgs ?? []) resolver.addOrg(o);
    resolver.setRecords(a.records);
  },
  wgUp: async () => {
    await wg!.up();
    return { publicKey: await wg!.publicKey(), mode: wg!.mode };
  },
  wgConfigure: (a: { peers: WireGuardPeer[] }) => wg!.configure(a.peers),
  // Stand-ins for the host's own services (API, agent, edge admin): TCP and UDP on every address.
  listen: async (a: { ports: number[] }) => {
    for (const port of a.ports) {
      const tcp = createServer((s) => s.end('host-service\n'));
      await new Promise<void>((r, j) => tcp.once('error', j).listen({ port, host: '::' }, () => r()));
      services.push(tcp);
      const udp = createSocket({ type: 'udp6' });
      udp.on('message', (m, r) => udp.send(m, r.port, r.address));
      await new Promise<void>((r, j) => udp.once('error', j).bind({ port, address: '::' }, () => r()));
      services.push(udp);
    }
  },
  // The mesh: this host's slice index and key; bring the interface up and sync; sync again now.
  mesh: async () => ({ index: mesh!.index, hostIndex: network.hostIndex, publicKey: await wg!.publicKey() }),
  meshStart: () => mesh!.start(),
  meshSync: () => mesh!.sync(),
  // What the agent's reconcile does with its assignments, network-wise: ensure each org with the
  // control plane's settings (its prefix, egress), attach each instance.
  assignments: async () => {
    const out: Attachment[] = [];
    for (const a of await link!.assignments(options.mesh!.hostId)) {
      await network.ensure(a.app.orgId, a.app.network);
      out.push(await network.attach({ instanceId: a.instance.id, orgId: a.app.orgId }));
    }
    return out;
  },
  report: (a: { instanceId: string; report: InstanceReport }) => link!.report(a.instanceId, a.report),
  close: async () => {
    await resolver.close();
    await network.close();
    if (wg) await wg.down();
  },
};

if (options.mesh && link && mesh) {
  await link.registerHost({ id: options.mesh.hostId, name: options.mesh.hostName, region: 'ams', capacity: { memoryBytes: 1 << 30, cpus: 1 } });
  await mesh.register(options.mesh.hostId);
}
await network.restore();
const rl = createInterface({ input: process.stdin });
process.stdout.write(JSON.stringify({ id: 0, ok: true, result: 'ready' }) + '\n');
rl.on('line', (line) => {
  const { id, cmd, args } = JSON.parse(line) as { id: number; cmd: string; args: unknown };
  const fn = commands[cmd];
  Promise.resolve()
    .then(() => (fn ? fn(args) : Promise.reject(new Error(`unknown command ${cmd}`))))
    .then(
      (result) => process.stdout.write(JSON.stringify({ id, ok: true, result: result ?? null }) + '\n'),
      (e: unknown) => process.stdout.write(JSON.stringify({ id, ok: false, error: String((e as Error)?.stack ?? e) }) + '\n'),
    );
});
rl.on('close', () => {
  for (const s of services) s.close();
  void mesh?.close();
  void resolver.close().then(() => store?.close()).then(() => process.exit(0));
});

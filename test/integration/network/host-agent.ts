// A host's network agent for the tests, run inside a namespace that stands in for a host:
//   nsenter --net=/run/netns/<host> -- node host-agent.ts '<options json>'
// It builds what `ward agent` builds (BridgeNetwork, InternalResolver, WireGuardDevice), restores the
// host from its records at once (what an agent start does), and then obeys JSON commands on stdin, one
// per line, answering each with one JSON line on stdout: {id, ok, result | error}.
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { BridgeNetwork, InternalResolver, WireGuardDevice, type BridgeNetworkOptions, type DnsRecord, type Upstream, type WireGuardPeer } from '../../../src/agent/network/index.ts';

interface Options {
  network: BridgeNetworkOptions;
  upstreams: Upstream[];
  dnsPort?: number;
  wireguard?: { name: string; stateDir: string; listenPort: number };
}

const options = JSON.parse(process.argv[2]!) as Options;
const resolver = new InternalResolver({ upstreams: options.upstreams, port: options.dnsPort ?? 53, timeoutMs: 1000 });
const network = new BridgeNetwork({ ...options.network, resolver });
const wg = options.wireguard ? new WireGuardDevice({ ...options.wireguard, mode: 'auto' }) : undefined;
const services: (Server | Socket)[] = [];

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
  close: async () => {
    await resolver.close();
    await network.close();
    if (wg) await wg.down();
  },
};

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
  void resolver.close().then(() => process.exit(0));
});

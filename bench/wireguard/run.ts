// bench/wireguard: TCP throughput between two namespace "hosts" through Ward's WireGuard tunnel, against
// the plain veth between the same namespaces, as a ratio.
//
//   node bench/wireguard/run.ts [--seconds 3]      (root; a benchmark, not a test)
//
// Two namespaces joined by a veth pair stand in for two hosts on a LAN. Each runs Ward's WireGuardDevice
// (kernel WireGuard when the host has it, wireguard-go otherwise) through the same agent process the
// network tests use, peered as the control plane would peer them. One TCP stream per path, bounded in
// time (bench/wireguard/tcp.ts). Everything carries one random prefix and is removed at the end, even on
// failure. Anchor (PLATFORM-NOTES): wireguard-go ≈ 220 Mbit/s vs veth ≈ 9.1 Gbit/s on 2 shared cores.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { run, start } from '../../src/exec/index.ts';
import { buildNetworkMap } from '../../src/agent/network/index.ts';
import { NetLab, cannotRunNetworkTests } from '../../test/integration/network/lab.ts';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 3;
const HERE = new URL('.', import.meta.url).pathname;

async function stream(lab: NetLab, from: string, to: string, host: string): Promise<number> {
  const recv = start(lab.inNs(`/run/netns/${to}`, [process.execPath, join(HERE, 'tcp.ts'), 'recv', '5201']), { stdio: ['ignore', 'pipe', 'inherit'] });
  lab.children.push(recv);
  const lines = createInterface({ input: recv.stdout! })[Symbol.asyncIterator]();
  if ((await lines.next()).value !== 'ready') throw new Error('receiver did not start');
  await run(lab.inNs(`/run/netns/${from}`, [process.execPath, join(HERE, 'tcp.ts'), 'send', host, '5201', String(seconds)]), { timeoutMs: (seconds + 30) * 1000 });
  const result = JSON.parse((await lines.next()).value as string) as { bytes: number; seconds: number };
  return (result.bytes * 8) / result.seconds / 1e6;
}

const skip = cannotRunNetworkTests();
if (skip) {
  console.error(`bench/wireguard: ${skip}`);
  process.exit(2);
}
const lab = new NetLab();
try {
  await lab.setUp();
  const a = await lab.host('ba', 1, { wireguardPort: 51820 });
  const b = await lab.host('bb', 2, { wireguardPort: 51820 });
  await lab.link(a.netns, ['192.0.2.1/24'], b.netns, ['192.0.2.2/24'], 'x');
  const ka = await a.agent.call<{ publicKey: string; mode: string }>('wgUp');
  const kb = await b.agent.call<{ publicKey: string; mode: string }>('wgUp');
  // One org on both hosts; each host's tunnel address is its gateway in the org's slice.
  await a.agent.call('ensure', { orgId: 'org_bench' });
  await b.agent.call('ensure', { orgId: 'org_bench' });
  const orgs = (await a.agent.call<{ orgId: string; prefix6: string; gateway6: string }[]>('orgs')).map((o) => ({ orgId: o.orgId, prefix6: o.prefix6, egress: 'allow' as const }));
  const gwB = (await b.agent.call<{ gateway6: string }[]>('orgs'))[0]!.gateway6;
  const hosts = [
    { id: 'hst_a', index: 1, publicKey: ka.publicKey, endpoint: '192.0.2.1:51820' },
    { id: 'hst_b', index: 2, publicKey: kb.publicKey, endpoint: '192.0.2.2:51820' },
  ];
  // A placeholder instance per host makes each host's slice part of the map.
  const instances = [
    { hostId: 'hst_a', orgId: 'org_bench', app: 'x', instanceId: 'ins_a', region: 'r', ipv6: gwB },
    { hostId: 'hst_b', orgId: 'org_bench', app: 'x', instanceId: 'ins_b', region: 'r', ipv6: gwB },
  ];
  for (const [h, id] of [[a, 'hst_a'], [b, 'hst_b']] as const) await h.agent.call('wgConfigure', { peers: buildNetworkMap({ hostId: id, hosts, orgs, people: [], instances }).peers });
  // The firewall lets a host's own services accept only DNS from the tunnel: the receiver listens in
  // b's namespace, so open its port there for this measurement only.
  await run(['ip', 'netns', 'exec', b.netns, 'nft', 'insert', 'rule', 'inet', 'ward', 'from_tunnel', 'tcp', 'dport', '5201', 'accept']);
  const veth = await stream(lab, a.netns, b.netns, '192.0.2.2');
  const tunnel = await stream(lab, a.netns, b.netns, gwB);
  console.log(JSON.stringify({ mode: ka.mode, seconds, vethMbps: Math.round(veth), tunnelMbps: Math.round(tunnel), ratio: Number((tunnel / veth).toFixed(4)) }));
  console.log(`WireGuard (${ka.mode}) ${tunnel.toFixed(0)} Mbit/s vs plain veth ${veth.toFixed(0)} Mbit/s: ratio ${(tunnel / veth).toFixed(3)}`);
} finally {
  await lab.cleanup();
}

// What runs inside an instance's (or an outside host's, or a laptop's) namespace for the network tests:
//   nsenter --net=<netns path> -- node peer.ts <port>
// It listens on TCP and UDP <port> on every address (dual stack): TCP connections get "hello from
// <name>", UDP datagrams are echoed and their payloads remembered (so a test can tell whether a spoofed
// packet arrived). With DNS=1 it also answers any DNS query on port 53 with 192.0.2.53 (an upstream).
// Commands arrive as JSON lines on stdin and are answered as JSON lines: probes and queries from here.
import { connect, createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { buildQuery, buildResponse, parseQuery, parseResponse, TYPE_A, RCODE_NOERROR } from '../../../src/agent/network/dns/codec.ts';

const port = Number(process.argv[2]);
const name = process.argv[3] ?? 'peer';
const seen: string[] = [];
let connections = 0;

const tcp = createServer((s) => {
  connections++;
  s.on('error', () => {});
  s.end(`hello from ${name}\n`);
});
await new Promise<void>((r) => tcp.listen({ port, host: '::' }, () => r()));
const udp = createSocket({ type: 'udp6' });
udp.on('message', (m, r) => {
  seen.push(m.toString('latin1'));
  udp.send(m, r.port, r.address);
});
await new Promise<void>((r) => udp.bind({ port, address: '::' }, () => r()));
if (process.env.DNS === '1') {
  const dns = createSocket({ type: 'udp6' });
  dns.on('message', (m, r) => {
    try {
      const q = parseQuery(m);
      const question = q.questions[0]!;
      const answers = question.type === TYPE_A ? [{ name: question.name, type: TYPE_A, ttl: 60, data: '192.0.2.53' }] : [];
      dns.send(buildResponse(q, { rcode: RCODE_NOERROR, answers }), r.port, r.address);
    } catch {
      // Not DNS.
    }
  });
  await new Promise<void>((r) => dns.bind({ port: 53, address: '::' }, () => r()));
  const dnsTcp = createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', (d: Buffer) => {
      const q = parseQuery(d.subarray(2));
      const question = q.questions[0]!;
      const reply = buildResponse(q, { rcode: RCODE_NOERROR, answers: question.type === TYPE_A ? [{ name: question.name, type: TYPE_A, ttl: 60, data: '192.0.2.53' }] : [] });
      const len = Buffer.alloc(2);
      len.writeUInt16BE(reply.length);
      sock.end(Buffer.concat([len, reply]));
    });
  });
  await new Promise<void>((r) => dnsTcp.listen({ port: 53, host: '::' }, () => r()));
}

// A TCP probe succeeds once the connection is established (a service that sends nothing counts too).
function tcpProbe(host: string, p: number, timeoutMs: number, wantData = false): Promise<string | false> {
  return new Promise((resolve) => {
    const s = connect({ host, port: p });
    let data = '';
    const t = setTimeout(() => done(false), timeoutMs);
    function done(v: string | false) {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    }
    s.on('connect', () => {
      if (!wantData) done('connected');
    });
    s.on('data', (d) => {
      data += d.toString();
      if (data.includes('\n')) done(data.trim());
    });
    s.on('error', () => done(false));
    s.on('end', () => done(data.trim() || false));
  });
}

function udpProbe(host: string, p: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const token = `probe-${Math.random()}`;
    const t = setTimeout(() => done(false), timeoutMs);
    function done(v: boolean) {
      clearTimeout(t);
      s.close();
      resolve(v);
    }
    s.on('error', () => done(false));
    s.on('message', (m) => {
      if (m.toString() === token) done(true);
    });
    s.send(token, p, host);
  });
}

function dnsQuery(server: string, qname: string, type: number, timeoutMs: number, transport: 'udp' | 'tcp'): Promise<unknown> {
  const query = buildQuery(Math.floor(Math.random() * 65535), qname, type);
  return new Promise((resolve) => {
    if (transport === 'tcp') {
      const s = connect({ host: server, port: 53 });
      let buf = Buffer.alloc(0);
      const t = setTimeout(() => done({ timeout: true }), timeoutMs);
      function done(v: unknown) {
        clearTimeout(t);
        s.destroy();
        resolve(v);
      }
      s.on('error', () => done({ error: true }));
      s.on('connect', () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        s.write(Buffer.concat([len, query]));
      });
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(parseResponse(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      });
      return;
    }
    const s = createSocket(server.includes(':') ? 'udp6' : 'udp4');
    const t = setTimeout(() => done({ timeout: true }), timeoutMs);
    function done(v: unknown) {
      clearTimeout(t);
      s.close();
      resolve(v);
    }
    s.on('error', () => done({ error: true }));
    s.on('message', (m) => done(parseResponse(m)));
    s.send(query, 53, server);
  });
}

async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

type Probe = { proto: 'tcp' | 'udp'; host: string; port: number };
const commands: Record<string, (a: any) => Promise<unknown>> = {
  probe: async (a: { probes: Probe[]; timeoutMs: number; concurrency?: number }) =>
    pool(a.probes, a.concurrency ?? 32, async (p) => (p.proto === 'tcp' ? (await tcpProbe(p.host, p.port, a.timeoutMs)) !== false : udpProbe(p.host, p.port, a.timeoutMs))),
  tcp: (a: { host: string; port: number; timeoutMs: number }) => tcpProbe(a.host, a.port, a.timeoutMs, true),
  dns: (a: { server: string; name: string; type: number; timeoutMs: number; transport?: 'udp' | 'tcp' }) => dnsQuery(a.server, a.name, a.type, a.timeoutMs, a.transport ?? 'udp'),
  seen: async () => ({ seen, connections }),
};

process.stdout.write(JSON.stringify({ id: 0, ok: true, result: 'ready' }) + '\n');
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const { id, cmd, args } = JSON.parse(line) as { id: number; cmd: string; args: unknown };
  Promise.resolve()
    .then(() => commands[cmd]!(args))
    .then(
      (result) => process.stdout.write(JSON.stringify({ id, ok: true, result: result ?? null }) + '\n'),
      (e: unknown) => process.stdout.write(JSON.stringify({ id, ok: false, error: String(e) }) + '\n'),
    );
});
rl.on('close', () => process.exit(0));

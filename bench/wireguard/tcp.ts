// The benchmark's TCP sender and receiver, bounded in time:
//   node tcp.ts recv PORT              accepts one connection, counts bytes, prints {bytes, seconds}
//   node tcp.ts send HOST PORT SECONDS writes 64 KiB chunks as fast as the socket drains, then closes
import { connect, createServer } from 'node:net';

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'recv') {
  const server = createServer((s) => {
    let bytes = 0;
    let first = 0;
    s.on('data', (d: Buffer) => {
      if (!first) first = performance.now();
      bytes += d.length;
    });
    s.on('end', () => {
      process.stdout.write(JSON.stringify({ bytes, seconds: (performance.now() - first) / 1000 }) + '\n');
      server.close();
    });
  });
  server.listen({ port: Number(a), host: '::' }, () => process.stdout.write('ready\n'));
  setTimeout(() => process.exit(2), 60_000).unref();
} else if (mode === 'send') {
  const chunk = Buffer.alloc(64 * 1024, 7);
  const s = connect({ host: a!, port: Number(b) }, () => {
    const until = performance.now() + Number(c) * 1000;
    const pump = () => {
      while (performance.now() < until) if (!s.write(chunk)) return void s.once('drain', pump);
      s.end();
    };
    pump();
  });
  s.on('error', (e) => {
    console.error(e.message);
    process.exit(1);
  });
} else {
  console.error('usage: tcp.ts recv PORT | send HOST PORT SECONDS');
  process.exit(2);
}

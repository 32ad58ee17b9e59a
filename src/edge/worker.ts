// An edge worker process (node:cluster): it waits for its configuration from the primary, runs an Edge
// on SO_REUSEPORT listeners, and mirrors the primary's route table, certificates and ACME challenges.
// What it has to report goes to the primary as log messages; it writes no log of its own.
import cluster from 'node:cluster';
import { AggregatorRegistry, Registry } from 'prom-client';
import { UserError } from '../core/index.ts';
import { jsonLinesSink, type AccessLogEntry, type AccessLogSink } from './access-log.ts';
import { ChallengeStore } from './certs/challenges.ts';
import { CertificateCache } from './certs/source.ts';
import { deserializeCertificate, type PrimaryMessage, type SerializedCertificate, type WorkerMessage } from './cluster.ts';
import { Edge, type EdgeLog } from './edge.ts';
import { routeTableFromSnapshot } from './snapshot.ts';

if (!cluster.isWorker) throw new Error('src/edge/worker.ts runs as a cluster worker of EdgeCluster');

let edge: Edge | undefined;
let access: (AccessLogSink & { flush(): void }) | undefined;
const challenges = new ChallengeStore();

function send(m: PrimaryMessage): void {
  process.send?.(m);
}

/** log forwards to the primary; an error becomes its message and code (an Error does not cross IPC). */
function forward(level: 'info' | 'warn' | 'error'): (obj: object, msg: string) => void {
  return (obj, msg) => {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) fields[k] = v instanceof Error ? { message: v.message, code: (v as NodeJS.ErrnoException).code } : v;
    send({ type: 'ward-edge:log', level, fields, msg });
  };
}
const log: EdgeLog = { info: forward('info'), warn: forward('warn'), error: forward('error') };

/**
 * toPrimary batches access-log entries to the primary: one IPC message every 250 ms or 256 entries, not
 * one per request. Only entries an instance answered are sent (the primary files lines per instance).
 */
function toPrimary(): AccessLogSink & { flush(): void } {
  let batch: AccessLogEntry[] = [];
  const flush = () => {
    if (batch.length === 0) return;
    send({ type: 'ward-edge:access', entries: batch });
    batch = [];
  };
  setInterval(flush, 250).unref();
  return {
    flush,
    write(e) {
      if (e.instance === undefined) return;
      batch.push(e);
      if (batch.length >= 256) flush();
    },
  };
}

function certificateSource(list: SerializedCertificate[]): CertificateCache {
  // A new cache per update: the handshake path sees the old set or the new one, never a mix.
  const cache = new CertificateCache();
  for (const c of list) cache.set(deserializeCertificate(c));
  return cache;
}

// Ctrl-C reaches the whole process group: the primary stops the workers in order (draining), so a
// worker leaves SIGINT to it. SIGTERM sent to a worker alone drains it and ends it (the primary starts
// another unless it is stopping too).
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {
  void (edge?.stop({ graceMs: 5000 }) ?? Promise.resolve()).finally(() => {
    access?.flush();
    process.exit(0);
  });
});

// A worker whose primary is gone has no one to feed it routes or certificates: it drains and exits.
process.on('disconnect', () => {
  void (edge?.stop({ graceMs: 5000 }) ?? Promise.resolve()).finally(() => process.exit(0));
});

process.on('message', (m: WorkerMessage) => {
  void (async () => {
    switch (m?.type) {
      case 'ward-edge:init': {
        for (const change of m.challenges) challenges.apply(change);
        const registry = new Registry();
        // Constructing one is what makes prom-client answer the primary's requests for metrics here.
        new AggregatorRegistry();
        AggregatorRegistry.setRegistries([registry]);
        const c = m.config;
        edge = new Edge({
          routes: routeTableFromSnapshot(m.routes),
          certificates: certificateSource(m.certificates),
          challenges,
          defaultCertificate: c.defaultCertificate,
          http: c.http,
          https: c.https,
          publicHttpsPort: c.publicHttpsPort,
          tcpBind: (port) => ({ host: c.https ? c.https.host : '::', port: port + c.tcpPortOffset }),
          limits: c.limits,
          metrics: registry,
          log,
          ...(c.accessLog === 'stdout' ? { accessLog: jsonLinesSink(process.stdout) } : c.accessLog === 'primary' ? { accessLog: (access = toPrimary()) } : {}),
          ticketKeys: Buffer.from(c.ticketKeys, 'base64'),
          http2: c.http2,
          reusePort: true,
        });
        try {
          await edge.start();
          send({ type: 'ward-edge:ready' });
        } catch (e) {
          const u = e instanceof UserError ? e : undefined;
          send({ type: 'ward-edge:error', message: (e as Error).message, code: u?.code, hint: u?.hint });
          process.exit(1);
        }
        break;
      }
      case 'ward-edge:routes':
        // setRoutes swaps the table at once; the promise is the TCP listeners following it.
        await edge?.setRoutes(routeTableFromSnapshot(m.routes)).catch((e: unknown) => log.error({ err: e }, 'route table not applied'));
        send({ type: 'ward-edge:reply', ref: m.ref, value: 0 });
        break;
      case 'ward-edge:certificates':
        edge?.setCertificates(certificateSource(m.certificates));
        break;
      case 'ward-edge:challenge':
        challenges.apply(m.change);
        break;
      case 'ward-edge:drain': {
        const r = edge ? await edge.drain(m.id, m.timeoutMs) : { inFlight: 0 };
        send({ type: 'ward-edge:reply', ref: m.ref, value: r.inFlight });
        break;
      }
      case 'ward-edge:stop':
        await edge?.stop({ graceMs: m.graceMs });
        access?.flush();
        send({ type: 'ward-edge:stopped' });
        process.exit(0);
    }
  })();
});

// An edge worker process (node:cluster): it waits for its configuration from the primary, runs an Edge
// on SO_REUSEPORT listeners, and mirrors the primary's route table, certificates and ACME challenges.
import cluster from 'node:cluster';
import { AggregatorRegistry, Registry } from 'prom-client';
import { jsonLinesSink } from './access-log.ts';
import { ChallengeStore } from './certs/challenges.ts';
import { CertificateCache } from './certs/source.ts';
import { deserializeCertificate, type PrimaryMessage, type SerializedCertificate, type WorkerMessage } from './cluster.ts';
import { Edge } from './edge.ts';
import { routeTableFromSnapshot } from './snapshot.ts';

if (!cluster.isWorker) throw new Error('src/edge/worker.ts runs as a cluster worker of EdgeCluster');

let edge: Edge | undefined;
const challenges = new ChallengeStore();

function send(m: PrimaryMessage): void {
  process.send?.(m);
}

function certificateSource(list: SerializedCertificate[]): CertificateCache {
  // A new cache per update: the handshake path sees the old set or the new one, never a mix.
  const cache = new CertificateCache();
  for (const c of list) cache.set(deserializeCertificate(c));
  return cache;
}

// A worker whose primary is gone has no one to feed it routes or certificates: it drains and exits.
process.on('disconnect', () => {
  void (edge?.stop({ graceMs: 5000 }) ?? Promise.resolve()).finally(() => process.exit(0));
});

process.on('message', (m: WorkerMessage) => {
  void (async () => {
    switch (m?.type) {
      case 'ward-edge:init': {
        const registry = new Registry();
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
          ...(c.accessLog === 'stdout' ? { accessLog: jsonLinesSink(process.stdout) } : {}),
          ticketKeys: Buffer.from(c.ticketKeys, 'base64'),
          http2: c.http2,
          reusePort: true,
        });
        try {
          await edge.start();
          send({ type: 'ward-edge:ready' });
        } catch (e) {
          send({ type: 'ward-edge:error', message: (e as Error).message });
          process.exit(1);
        }
        break;
      }
      case 'ward-edge:routes':
        await edge?.setRoutes(routeTableFromSnapshot(m.routes));
        break;
      case 'ward-edge:certificates':
        edge?.setCertificates(certificateSource(m.certificates));
        break;
      case 'ward-edge:challenge':
        challenges.apply(m.change);
        break;
      case 'ward-edge:stop':
        await edge?.stop({ graceMs: m.graceMs });
        send({ type: 'ward-edge:stopped' });
        process.exit(0);
    }
  })();
});

import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry } from 'prom-client';
import type { ChallengeChange } from './certs/challenges.ts';
import type { KeyAndCertificate } from './certs/self-signed.ts';
import type { StoredCertificate } from './certs/store.ts';
import type { EdgeLimits } from './limits.ts';
import type { RouteSnapshot } from './snapshot.ts';
import type { Listen } from './tcp.ts';

/** WorkerConfig is what an edge worker needs to start; it travels over the cluster IPC channel. */
export interface WorkerConfig {
  http: Listen | false;
  https: Listen | false;
  publicHttpsPort: number;
  limits: Partial<EdgeLimits>;
  http2: boolean;
  /** ticketKeys (base64, 48 bytes) are shared so a session ticket from one worker resumes on another. */
  ticketKeys: string;
  defaultCertificate: KeyAndCertificate;
  /** accessLog 'stdout' writes JSON lines to the worker's stdout (the primary's log stream). */
  accessLog: 'stdout' | 'none';
  /** tcpPortOffset shifts `[[services]]` ports (tests); 0 in production. */
  tcpPortOffset: number;
}

/** SerializedCertificate is a StoredCertificate over IPC (dates as ISO strings). */
export interface SerializedCertificate {
  name: string;
  names: string[];
  certPem: string;
  keyPem: string;
  notBefore: string;
  notAfter: string;
  source: 'acme' | 'manual';
}

/** WorkerMessage is a message from the primary to a worker. */
export type WorkerMessage =
  | { type: 'ward-edge:init'; config: WorkerConfig; routes: RouteSnapshot; certificates: SerializedCertificate[] }
  | { type: 'ward-edge:routes'; routes: RouteSnapshot }
  | { type: 'ward-edge:certificates'; certificates: SerializedCertificate[] }
  | { type: 'ward-edge:challenge'; change: ChallengeChange }
  | { type: 'ward-edge:stop'; graceMs: number };

/** PrimaryMessage is a message from a worker to the primary. */
export type PrimaryMessage = { type: 'ward-edge:ready' } | { type: 'ward-edge:error'; message: string } | { type: 'ward-edge:stopped' };

export interface EdgeClusterOptions {
  /** workers is the number of processes; default one per core. */
  workers?: number;
  config: Omit<WorkerConfig, 'ticketKeys' | 'defaultCertificate'> & { ticketKeys?: Buffer; defaultCertificate: KeyAndCertificate };
  routes: RouteSnapshot;
  certificates?: StoredCertificate[];
  /** onWorkerExit is told when a worker dies unexpectedly (it is restarted). */
  onWorkerExit?: (pid: number | undefined, code: number | null, signal: string | null) => void;
}

const WORKER_FILE = fileURLToPath(new URL('./worker.ts', import.meta.url));

export function serializeCertificate(c: StoredCertificate): SerializedCertificate {
  return { ...c, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() };
}

export function deserializeCertificate(c: SerializedCertificate): StoredCertificate {
  return { ...c, notBefore: new Date(c.notBefore), notAfter: new Date(c.notAfter) };
}

/**
 * EdgeCluster runs the edge as one worker process per core (node:cluster). Each worker binds its own
 * SO_REUSEPORT sockets, so the kernel spreads connections and the primary is not on the data path. The
 * primary holds the state (route snapshot, certificates, pending challenges) and pushes every change to
 * every worker; a worker that dies is restarted with the latest state. ACME issuance and renewal run in
 * the primary (CertManager), which then calls setCertificates.
 */
export class EdgeCluster {
  readonly #o: EdgeClusterOptions;
  readonly #workers = new Set<Worker>();
  #config: WorkerConfig;
  #routes: RouteSnapshot;
  #certificates: SerializedCertificate[];
  #stopping = false;
  readonly #aggregator = new AggregatorRegistry();

  constructor(options: EdgeClusterOptions) {
    if (!cluster.isPrimary) throw new Error('EdgeCluster runs in the primary process');
    this.#o = options;
    const { ticketKeys, defaultCertificate, ...rest } = options.config;
    this.#config = { ...rest, ticketKeys: (ticketKeys ?? randomBytes(48)).toString('base64'), defaultCertificate };
    this.#routes = options.routes;
    this.#certificates = (options.certificates ?? []).map(serializeCertificate);
  }

  /** pids are the running workers' process ids. */
  get pids(): number[] {
    return [...this.#workers].map((w) => w.process.pid).filter((p): p is number => p !== undefined);
  }

  async start(): Promise<void> {
    cluster.setupPrimary({ exec: WORKER_FILE, args: [], silent: false });
    const n = this.#o.workers ?? availableParallelism();
    await Promise.all(Array.from({ length: n }, () => this.#fork()));
  }

  #fork(): Promise<void> {
    const worker = cluster.fork();
    this.#workers.add(worker);
    return new Promise((resolve, reject) => {
      const onMessage = (m: PrimaryMessage) => {
        if (m?.type === 'ward-edge:ready') {
          worker.off('message', onMessage);
          resolve();
        } else if (m?.type === 'ward-edge:error') {
          worker.off('message', onMessage);
          reject(new Error(`edge worker failed to start: ${m.message}`));
        }
      };
      worker.on('message', onMessage);
      worker.once('online', () => this.#send(worker, { type: 'ward-edge:init', config: this.#config, routes: this.#routes, certificates: this.#certificates }));
      worker.once('exit', (code, signal) => {
        this.#workers.delete(worker);
        worker.off('message', onMessage);
        reject(new Error(`edge worker exited during start (${signal ?? code})`));
        if (!this.#stopping) {
          this.#o.onWorkerExit?.(worker.process.pid, code, signal);
          // Restart after a pause so a worker that dies at once does not spin.
          setTimeout(() => void this.#fork().catch(() => {}), 1000).unref();
        }
      });
    });
  }

  #send(worker: Worker, m: WorkerMessage): void {
    if (worker.isConnected()) worker.send(m);
  }

  #broadcast(m: WorkerMessage): void {
    for (const w of this.#workers) this.#send(w, m);
  }

  /** setRoutes swaps every worker's route table. */
  setRoutes(routes: RouteSnapshot): void {
    this.#routes = routes;
    this.#broadcast({ type: 'ward-edge:routes', routes });
  }

  /** setCertificates replaces every worker's certificates. */
  setCertificates(certificates: StoredCertificate[]): void {
    this.#certificates = certificates.map(serializeCertificate);
    this.#broadcast({ type: 'ward-edge:certificates', certificates: this.#certificates });
  }

  /** applyChallenge mirrors a pending ACME challenge to every worker (subscribe it to the ChallengeStore). */
  applyChallenge(change: ChallengeChange): void {
    this.#broadcast({ type: 'ward-edge:challenge', change });
  }

  /** metrics are the workers' metrics summed (prom-client's cluster aggregation), in text format. */
  metrics(): Promise<string> {
    return this.#aggregator.clusterMetrics();
  }

  /** stop drains every worker (graceMs) and waits for them to exit. */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    const exits = [...this.#workers].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          w.once('exit', () => resolve());
          this.#send(w, { type: 'ward-edge:stop', graceMs });
          // A worker that does not finish in time is killed (by its own pid, through the cluster handle).
          setTimeout(() => !w.isDead() && w.process.kill('SIGKILL'), graceMs + 5000).unref();
        }),
    );
    await Promise.all(exits);
  }
}

import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { getCompileCacheDir } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry } from 'prom-client';
import { UserError } from '../core/index.ts';
import type { ChallengeChange } from './certs/challenges.ts';
import type { KeyAndCertificate } from './certs/self-signed.ts';
import type { CertificateEntry } from './certs/source.ts';
import type { AccessLogEntry, AccessLogSink } from './access-log.ts';
import type { EdgeAddresses, EdgeLog } from './edge.ts';
import type { EdgeLimits } from './limits.ts';
import { listenError } from './listen-error.ts';
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
  /**
   * accessLog: 'primary' sends entries to the primary in batches (EdgeClusterOptions.accessLog),
   * 'stdout' writes JSON lines to the worker's stdout, 'none' keeps none.
   */
  accessLog: 'primary' | 'stdout' | 'none';
  /** tcpPortOffset shifts `[[services]]` ports (tests); 0 in production. */
  tcpPortOffset: number;
}

/**
 * SerializedCertificate is a served certificate over IPC: its managed name, the names it covers, the
 * chain and key in PEM, and its expiry (ISO). Keys cross only the primary's pipe to its own workers.
 */
export interface SerializedCertificate {
  name: string;
  names: string[];
  certPem: string;
  keyPem: string;
  notAfter: string;
}

/** WorkerMessage is a message from the primary to a worker. */
export type WorkerMessage =
  | { type: 'ward-edge:init'; config: WorkerConfig; routes: RouteSnapshot; certificates: SerializedCertificate[]; challenges: ChallengeChange[] }
  | { type: 'ward-edge:routes'; ref: number; routes: RouteSnapshot }
  | { type: 'ward-edge:certificates'; certificates: SerializedCertificate[] }
  | { type: 'ward-edge:challenge'; change: ChallengeChange }
  | { type: 'ward-edge:drain'; ref: number; id: string; timeoutMs: number }
  | { type: 'ward-edge:stop'; graceMs: number };

/** PrimaryMessage is a message from a worker to the primary. */
export type PrimaryMessage =
  | { type: 'ward-edge:ready' }
  | { type: 'ward-edge:error'; message: string; code?: string | undefined; hint?: string | undefined }
  | { type: 'ward-edge:stopped' }
  | { type: 'ward-edge:reply'; ref: number; value: number }
  | { type: 'ward-edge:log'; level: 'info' | 'warn' | 'error'; fields: Record<string, unknown>; msg: string }
  | { type: 'ward-edge:access'; entries: AccessLogEntry[] };

export interface EdgeClusterOptions {
  /** workers is the number of processes; default one per core. */
  workers?: number;
  config: Omit<WorkerConfig, 'ticketKeys' | 'defaultCertificate'> & { ticketKeys?: Buffer; defaultCertificate: KeyAndCertificate };
  routes: RouteSnapshot;
  certificates?: CertificateEntry[];
  /** log receives what the workers report (listener errors, OCSP failures), with the worker's pid. */
  log?: EdgeLog;
  /** accessLog receives the workers' access-log entries (config.accessLog 'primary'). */
  accessLog?: AccessLogSink;
  /** onWorkerReady is told when a worker listens (at start, and each replacement). */
  onWorkerReady?: (pid: number | undefined) => void;
  /** onWorkerExit is told when a worker dies unexpectedly (it is restarted). */
  onWorkerExit?: (pid: number | undefined, code: number | null, signal: string | null) => void;
}

const WORKER_FILE = fileURLToPath(new URL('./worker.ts', import.meta.url));

export function serializeCertificate(c: CertificateEntry): SerializedCertificate {
  return { name: c.name, names: [...c.names], certPem: c.certPem, keyPem: c.keyPem, notAfter: c.notAfter.toISOString() };
}

export function deserializeCertificate(c: SerializedCertificate): CertificateEntry {
  return { ...c, notAfter: new Date(c.notAfter) };
}

/**
 * claimListen checks that `at` can be bound by a socket that does not share its port (so a port another
 * process holds, even with SO_REUSEPORT, is refused here rather than silently shared by our workers) and
 * turns port 0 into the port the kernel picked. The probe is closed before the workers bind; for port 0
 * another process could take the port in between, which only tests ask for.
 */
function claimListen(at: Listen): Promise<Listen> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (e: NodeJS.ErrnoException) => reject(listenError(at, e)));
    probe.listen({ host: at.host, port: at.port, exclusive: true }, () => {
      const port = (probe.address() as AddressInfo).port;
      probe.close(() => resolve({ host: at.host, port }));
    });
  });
}

/**
 * EdgeCluster runs the edge as one worker process per core (node:cluster). Each worker binds its own
 * SO_REUSEPORT sockets, so the kernel spreads connections and the primary is not on the data path. The
 * primary holds the state (route snapshot, certificates, pending challenges) and pushes every change to
 * every worker; a worker that dies is restarted with the latest state. ACME issuance and renewal run in
 * the primary (CertManager), which then calls setCertificates. Messages to one worker arrive in the
 * order they were sent, so a drain sent after a route change is handled with the new table in place.
 */
export class EdgeCluster {
  readonly #o: EdgeClusterOptions;
  readonly #workers = new Set<Worker>();
  #config: WorkerConfig;
  #routes: RouteSnapshot;
  #certificates: SerializedCertificate[];
  /** Pending ACME challenges, so a worker started in the middle of a validation answers it too. */
  readonly #challenges = new Map<string, ChallengeChange>();
  #started = false;
  #stopping = false;
  #ref = 0;
  readonly #asks = new Map<number, { pending: Set<Worker>; sum: number; done: () => void }>();
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

  /**
   * start checks the listen addresses (a taken port is a UserError `listen_failed`, and no worker is
   * left running), then starts the workers and waits until each listens.
   */
  async start(): Promise<void> {
    const c = this.#config;
    if (c.http) c.http = await claimListen(c.http);
    if (c.https) c.https = await claimListen(c.https);
    cluster.setupPrimary({ exec: WORKER_FILE, args: [], silent: false });
    const n = this.#o.workers ?? availableParallelism();
    try {
      await Promise.all(Array.from({ length: n }, () => this.#fork()));
    } catch (e) {
      await this.stop(0);
      throw e;
    }
    this.#started = true;
  }

  /** addresses are where the workers listen (ports resolved when 0 was asked for). */
  addresses(): EdgeAddresses {
    const a = (l: Listen | false): AddressInfo | undefined => (l ? { address: l.host, port: l.port, family: l.host.includes(':') ? 'IPv6' : 'IPv4' } : undefined);
    return { http: a(this.#config.http), https: a(this.#config.https) };
  }

  #fork(): Promise<void> {
    // The workers use the compile cache this process uses (bin/ward.ts turns it on): they start faster
    // and, with their modules compiled already, leave TypeScript's stripper unloaded (~27 MB each).
    const cache = getCompileCacheDir();
    const worker = cluster.fork(cache ? { NODE_COMPILE_CACHE: cache } : {});
    this.#workers.add(worker);
    return new Promise((resolve, reject) => {
      const onMessage = (m: PrimaryMessage) => {
        if (m?.type === 'ward-edge:ready') {
          this.#o.onWorkerReady?.(worker.process.pid);
          resolve();
        } else if (m?.type === 'ward-edge:error') {
          reject(m.code ? new UserError(m.code as 'listen_failed', m.message, m.hint ? { hint: m.hint } : {}) : new Error(`edge worker failed to start: ${m.message}`));
        } else if (m?.type === 'ward-edge:reply') {
          this.#replied(worker, m.ref, m.value);
        } else if (m?.type === 'ward-edge:access') {
          for (const e of m.entries) this.#o.accessLog?.write(e);
        } else if (m?.type === 'ward-edge:log') {
          this.#o.log?.[m.level]({ ...m.fields, worker_pid: worker.process.pid }, m.msg);
        }
      };
      worker.on('message', onMessage);
      worker.once('online', () => this.#send(worker, { type: 'ward-edge:init', config: this.#config, routes: this.#routes, certificates: this.#certificates, challenges: [...this.#challenges.values()] }));
      worker.once('exit', (code, signal) => {
        this.#workers.delete(worker);
        worker.off('message', onMessage);
        // A worker that is gone has nothing in flight and no table: it no longer holds up a question.
        for (const [ref] of this.#asks) this.#replied(worker, ref, 0);
        reject(new Error(`edge worker exited during start (${signal ?? code})`));
        if (this.#started && !this.#stopping) {
          this.#o.onWorkerExit?.(worker.process.pid, code, signal);
          // Restart after a pause so a worker that dies at once does not spin.
          setTimeout(() => void (this.#stopping ? undefined : this.#fork().catch(() => {})), 1000).unref();
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

  /**
   * setRoutes swaps every worker's route table; it resolves when every worker has it (a worker that does
   * not answer within 5 s is not waited for; one started later gets the table at its start).
   */
  async setRoutes(routes: RouteSnapshot): Promise<void> {
    this.#routes = routes;
    await this.#ask((ref) => ({ type: 'ward-edge:routes', ref, routes }), 5000);
  }

  /** setCertificates replaces every worker's certificates. */
  setCertificates(certificates: readonly CertificateEntry[]): void {
    this.#certificates = certificates.map(serializeCertificate);
    this.#broadcast({ type: 'ward-edge:certificates', certificates: this.#certificates });
  }

  /** applyChallenge mirrors a pending ACME challenge to every worker (subscribe it to the ChallengeStore). */
  applyChallenge(change: ChallengeChange): void {
    const key = change.kind === 'http-01' ? `http-01 ${change.token}` : `tls-alpn-01 ${change.name.toLowerCase()}`;
    const removed = change.kind === 'http-01' ? change.keyAuthorization === undefined : change.keyPem === undefined || change.certPem === undefined;
    if (removed) this.#challenges.delete(key);
    else this.#challenges.set(key, change);
    this.#broadcast({ type: 'ward-edge:challenge', change });
  }

  /**
   * drain is Edge.drain across the workers: each waits (at most timeoutMs) until no request is in flight
   * to the instance and closes its connections to it; the answer is what was still in flight, summed (a
   * worker that does not answer counts as one). Take the instance out of the routes (setRoutes) first:
   * messages to a worker keep their order, so each has the new table before it handles the drain.
   */
  async drain(id: string, timeoutMs: number): Promise<{ inFlight: number }> {
    return { inFlight: await this.#ask((ref) => ({ type: 'ward-edge:drain', ref, id, timeoutMs }), timeoutMs + 2000) };
  }

  /**
   * #ask sends a message to every connected worker and sums their replies; a worker that has not replied
   * by the deadline adds 1 (so a drain it did not confirm is not reported as clean), one that exits adds 0.
   */
  #ask(message: (ref: number) => WorkerMessage, deadlineMs: number): Promise<number> {
    const workers = [...this.#workers].filter((w) => w.isConnected());
    if (workers.length === 0) return Promise.resolve(0);
    const ref = ++this.#ref;
    return new Promise((resolve) => {
      const entry = {
        pending: new Set(workers),
        sum: 0,
        done: () => {
          this.#asks.delete(ref);
          clearTimeout(timer);
          resolve(entry.sum);
        },
      };
      const timer = setTimeout(() => {
        entry.sum += entry.pending.size;
        entry.done();
      }, deadlineMs);
      timer.unref();
      this.#asks.set(ref, entry);
      const m = message(ref);
      for (const w of workers) this.#send(w, m);
    });
  }

  #replied(worker: Worker, ref: number, value: number): void {
    const a = this.#asks.get(ref);
    if (!a || !a.pending.delete(worker)) return;
    a.sum += value;
    if (a.pending.size === 0) a.done();
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

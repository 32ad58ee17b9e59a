/**
 * The edge role of `ward server`: the Edge on --http-listen/--https-listen, in this process, fed from
 * this node's state. Routes come from the apps' current releases (hostnames in their ward.toml, plus
 * `<app>.<domain>` when the server has a domain); upstreams from the agent's HealthRegistry, whose
 * subscribe tells us when an app's healthy instances change: the table is rebuilt then (and every
 * refreshMs for new releases), never per request. Certificates: a CertManager over a StoreCertStore in
 * the Store (shared by every edge on one database, with its issuance lock), keys sealed with the
 * server's sealing key for "edge-certs" (openSealingKeys); certificates an earlier version kept in
 * `<data dir>/edge/certs` are imported on first start.
 * See docs/edge.md "The edge role".
 */
import { readFile, rename, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { UserError } from '../core/index.ts';
import { LOCAL_ACME_DIRECTORY, type AppConfig, type ServerConfig } from '../config/index.ts';
import type { Store } from '../store/index.ts';
import type { SealingKeys } from '../secrets/index.ts';
import {
  AcmeIssuer,
  aesGcmSealer,
  CertificateCache,
  CertificateMetrics,
  CertManager,
  ChallengeStore,
  Edge,
  EdgeCluster,
  copyCertStore,
  FileCertStore,
  LocalCaIssuer,
  localCaDir,
  routesFromApps,
  selfSignedCertificate,
  snapshotRoutes,
  StaticUpstreamSource,
  StoreCertStore,
  StoreIssuanceLock,
  type AppRoutingInput,
  type CertificateIssuer,
  type CertificateStatus,
  type EdgeAddresses,
  type RouteSource,
  type Upstream,
} from '../edge/index.ts';
import { JournalAccessLog, type JournalTarget } from './edge-access-log.ts';

/** AUTO_MAX_EDGE_WORKERS caps edge_workers = auto on machines with many cores (set a number to go past it). */
export const AUTO_MAX_EDGE_WORKERS = 8;

/** HealthSource is what the edge reads of the agent's HealthRegistry (server.agent.health). */
export interface HealthSource {
  upstreams(appId: string): ReadonlyArray<{ instanceId: string; releaseId: string; address: string; port: number }>;
  healthy(appId: string): ReadonlyArray<{ instanceId: string; releaseId: string; address: string | undefined }>;
  subscribe(fn: (appId: string) => void): () => void;
}

export interface EdgeRoleOptions {
  /** health is the agent's registry; without an agent on this node no app has upstreams (503). */
  health: HealthSource | undefined;
  sealing: SealingKeys;
  logger: Logger;
  /** metrics is the registry the edge's metrics go in (the API's /metrics). */
  metrics?: Registry;
  /**
   * addMetrics adds a source of metrics text to the same /metrics: with worker processes, the edge's
   * request metrics are theirs, summed (EdgeCluster.metrics).
   */
  addMetrics?: (collect: () => Promise<string>) => void;
  /**
   * journal is this host's instance log journal (the agent's): the access log of each request goes into
   * the log stream of the instance that answered it. Without it (no agent here) there is no access log.
   */
  journal?: JournalTarget;
  /** refreshMs is how often releases are re-read for new routes; default 2 s. */
  refreshMs?: number;
  /** issuer replaces the ACME issuer (tests). */
  issuer?: CertificateIssuer;
  /** acmePollMs bounds acme-client's polling (tests against Pebble use short ones). */
  acmePollMs?: { min: number; max: number };
}

/** EdgeRoleState: `listening`, or `listen_failed` when a listener could not bind (the server runs on). */
export type EdgeRoleState = 'listening' | 'listen_failed' | 'stopped';

/**
 * CertificateService is what the API's `ward certs` routes use. Names are routed to the app that
 * claims them in its ward.toml; `app` records which app asked for a name (for listing per app).
 */
export interface CertificateService {
  add(app: string, name: string): Promise<CertificateStatus>;
  list(app?: string): Promise<Array<CertificateStatus & { app: string | undefined }>>;
  show(name: string): Promise<(CertificateStatus & { app: string | undefined }) | undefined>;
  remove(name: string): Promise<boolean>;
}

/**
 * EdgeFront is what the role drives: the Edge in this process (edge_workers = 1) or an EdgeCluster of
 * worker processes, each running an Edge.
 */
interface EdgeFront {
  start(): Promise<void>;
  stop(graceMs: number): Promise<void>;
  /** setRoutes swaps the table for new requests at once; it resolves when every process has it. */
  setRoutes(routes: RouteSource): Promise<void>;
  drain(instanceId: string, timeoutMs: number): Promise<{ inFlight: number }>;
  addresses(): EdgeAddresses;
}

export interface EdgeRole {
  /** edge is the Edge when it runs in this process (edge_workers = 1); cluster is set otherwise. */
  edge: Edge | undefined;
  cluster: EdgeCluster | undefined;
  certs: CertManager;
  certificates: CertificateService;
  state(): EdgeRoleState;
  /** error is the listen failure when state() is listen_failed. */
  error(): UserError | undefined;
  addresses(): EdgeAddresses;
  /** refresh rebuilds the route table from the store and the health registry now. */
  refresh(): Promise<void>;
  /**
   * drain is the agent's Drain: the instance (already withdrawn from the health registry) leaves the
   * route table at once, after the releases are read again (a bluegreen switch committed elsewhere is
   * in the table before the old set goes); then it waits, at most timeoutMs, until no request is in
   * flight to it, and closes its keep-alive connections. See docs/edge.md "Draining and the switch".
   */
  drain(instanceId: string, timeoutMs: number): Promise<{ inFlight: number; waitedMs: number }>;
  close(): Promise<void>;
}

/** startEdgeRole builds and starts the edge. It fails only on a broken data dir, not on a port it cannot bind. */
export async function startEdgeRole(config: ServerConfig, store: Store, options: EdgeRoleOptions): Promise<EdgeRole> {
  const log = options.logger.child({ role: 'edge' });
  const dir = join(config.dataDir, 'edge');
  const sealer = aesGcmSealer(await options.sealing.deriveKey('edge-certs'));
  const certStore = new StoreCertStore(store.edgeCerts, sealer);
  const owners = new CertOwners(store);
  await importFileCerts(dir, new FileCertStore(join(dir, 'certs'), sealer), certStore, store, config.acmeDirectory, log);
  await owners.load();
  const challenges = new ChallengeStore();
  const cache = new CertificateCache();
  const certMetrics = options.metrics ? new CertificateMetrics(options.metrics) : undefined;
  // auto: one per core, at most AUTO_MAX_EDGE_WORKERS (each worker is a Node process of ~100 MB).
  const workers = config.edgeWorkers === 'auto' ? Math.min(availableParallelism(), AUTO_MAX_EDGE_WORKERS) : config.edgeWorkers;
  let edge: Edge | undefined;
  let edgeCluster: EdgeCluster | undefined;
  let front: EdgeFront;
  const accessLog = options.journal ? new JournalAccessLog(options.journal, { onError: (err, id) => log.warn({ err, instance_id: id }, 'access log lines not written') }) : undefined;
  if (workers > 1) {
    const c = new EdgeCluster({
      workers,
      config: {
        http: config.httpListen,
        https: config.httpsListen,
        publicHttpsPort: config.httpsListen.port || 443,
        limits: {},
        http2: true,
        accessLog: accessLog ? 'primary' : 'none',
        tcpPortOffset: 0,
        defaultCertificate: await selfSignedCertificate(),
      },
      routes: { http: [], tcp: [] },
      log,
      ...(accessLog ? { accessLog } : {}),
      onWorkerExit: (pid, code, signal) => log.error({ worker_pid: pid, code, signal }, 'edge worker exited; starting another'),
    });
    // The primary keeps certificates and challenges; every change goes to every worker. The certificate
    // set goes whole, once per burst of changes (loading N certificates is one message, not N).
    let sending = false;
    cache.subscribe(() => {
      if (sending) return;
      sending = true;
      setImmediate(() => {
        sending = false;
        c.setCertificates(cache.entries().map((e) => ({ name: e.name, names: e.names, certPem: e.material.cert, keyPem: e.material.key, notAfter: e.material.notAfter })));
      });
    });
    challenges.subscribe((change) => c.applyChallenge(change));
    options.addMetrics?.(() => c.metrics());
    edgeCluster = c;
    front = {
      start: () => c.start(),
      stop: (graceMs) => c.stop(graceMs),
      setRoutes: (routes) => c.setRoutes(snapshotRoutes(routes)),
      drain: (id, timeoutMs) => c.drain(id, timeoutMs),
      addresses: () => c.addresses(),
    };
  } else {
    const e = new Edge({
      certificates: cache,
      challenges,
      http: config.httpListen,
      https: config.httpsListen,
      ...(config.httpsListen.port ? { publicHttpsPort: config.httpsListen.port } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(accessLog ? { accessLog } : {}),
      log,
    });
    edge = e;
    front = {
      start: () => e.start(),
      stop: (graceMs) => e.stop({ graceMs }),
      setRoutes: (routes) => e.setRoutes(routes).catch((err: unknown) => log.error({ err }, 'route table not applied')),
      drain: (id, timeoutMs) => e.drain(id, timeoutMs),
      addresses: () => e.addresses(),
    };
  }
  const caPem = config.acmeCaFile ? await readFile(config.acmeCaFile, 'utf8') : undefined;
  // acme_directory = "local": Ward's own CA in the data dir (made now, so ca.crt exists once we listen).
  const localCa =
    !options.issuer && config.acmeDirectory === LOCAL_ACME_DIRECTORY
      ? new LocalCaIssuer({ dir: localCaDir(config.dataDir), sealer: aesGcmSealer(await options.sealing.deriveKey('edge-local-ca')) })
      : undefined;
  await localCa?.ready();
  const issuer =
    options.issuer ??
    localCa ??
    new AcmeIssuer({
      directoryUrl: config.acmeDirectory,
      email: config.acmeEmail,
      caPem,
      store: certStore,
      challenges,
      ...(options.acmePollMs ? { pollMinMs: options.acmePollMs.min, pollMaxMs: options.acmePollMs.max } : {}),
    });
  const certs = new CertManager({
    store: certStore,
    lock: new StoreIssuanceLock(store.edgeCerts),
    issuer,
    cache,
    log,
    onExpiry: (name, notAfter) => certMetrics?.expiry.set({ name }, Math.floor(notAfter.getTime() / 1000)),
    onAttempt: (result) => certMetrics?.issuances.inc({ result }),
  });

  let state: EdgeRoleState = 'listening';
  let failure: UserError | undefined;
  try {
    await front.start();
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    state = 'listen_failed';
    failure = e;
    log.error({ code: e.code, hint: e.hint, http_listen: config.httpListen, https_listen: config.httpsListen }, `the edge is not running: ${e.message}`);
  }

  // Route table: rebuilt from the store when releases may have changed, and from memory on health changes.
  let apps: ServingApp[] = [];
  const known = new Set<string>();
  let current: RouteSource | undefined;
  // applied settles when the last table built is in every serving process (refresh waits for it).
  let applied: Promise<void> = Promise.resolve();
  // A name belongs to the app that added it (`ward certs add -a`), else to the app whose ward.toml routes it.
  // `<app>.<domain>` is always its app's, whoever added it.
  let reserved = new Map<string, string>();
  const ownerOf = (name: string): string | undefined => reserved.get(name) ?? owners.get(name) ?? current?.lookup(name)?.app;
  const rebuild = (): void => {
    // Names added with `ward certs add -a APP` route to that app, even when another app's ward.toml lists them.
    // A hostname or TCP port two apps claim goes to the older app (apps are listed oldest first): a new
    // app cannot take another tenant's name, nor stop the table from following everyone else's changes.
    // With a server domain, `<app>.<domain>` belongs to that app whatever any other app lists or adds.
    const names = new Set<string>();
    const ports = new Set<number>();
    reserved = defaultNames(apps, config.domain);
    const mine = (app: string, n: string) => (reserved.get(n) ?? app) === app;
    const inputs: AppRoutingInput[] = apps.map((a) => ({
      app: a.name,
      config: withoutTaken(a.name, withOwnedNames(a.config, owners.namesOf(a.name).filter((n) => mine(a.name, n)), (n) => (owners.get(n) ?? a.name) === a.name && mine(a.name, n)), names, ports, log),
      upstreams: (port: number) => new StaticUpstreamSource(upstreamsOf(options.health, a, port)),
    }));
    let routes: RouteSource;
    try {
      routes = routesFromApps(inputs, { domain: config.domain });
    } catch (e) {
      // Two apps claim one name: keep serving the last good table rather than guess whose it is.
      log.error({ err: e }, 'route table not updated');
      return;
    }
    current = routes;
    if (state === 'listening') applied = front.setRoutes(routes);
    const fresh = routes.hostnames().filter((n) => !known.has(n) && !/^[\d.]+$|^\[/.test(n));
    if (fresh.length > 0 && state === 'listening') {
      fresh.forEach((n) => known.add(n));
      void certs.add(fresh).then(() => certs.tick()).catch((e: unknown) => log.error({ err: e }, 'certificates not added'));
    }
  };
  let seen = '';
  const load = async (): Promise<void> => {
    const next = await currentApps(store);
    await owners.load(); // `ward certs add -a` on another edge sharing the database
    // Health changes rebuild on their own (subscribe); here only a new release, a release's new status
    // (the bluegreen switch), a new app set or new certificate owners do.
    const signature = next.map((a) => `${a.id}@${a.version}:${a.status}`).join(',') + `|${owners.signature()}`;
    if (signature === seen) return;
    seen = signature;
    apps = next;
    rebuild();
  };
  // One reload at a time, in order: an older read must never be applied after a newer one.
  let reloading: Promise<void> = Promise.resolve();
  const reload = (): Promise<void> => {
    reloading = reloading.catch(() => {}).then(load);
    return reloading;
  };
  let pending = false;
  const unsubscribe = options.health?.subscribe(() => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => {
      pending = false;
      rebuild();
    });
  });
  await reload();
  const timer = setInterval(() => void reload().catch((e: unknown) => log.warn({ err: e }, 'routes not reloaded')), options.refreshMs ?? 2000);
  timer.unref();
  if (state === 'listening') await certs.start();
  const a = front.addresses();
  if (state === 'listening') log.info({ http: a.http && `${a.http.address}:${a.http.port}`, https: a.https && `${a.https.address}:${a.https.port}`, workers }, 'edge listening');

  const certificates: CertificateService = {
    async add(app, raw) {
      const name = raw.toLowerCase();
      await certs.add([name]);
      await owners.set(name, app);
      rebuild();
      if (state === 'listening') void certs.tick();
      return (await certs.show(name))!;
    },
    async list(app) {
      const all = (await certs.list()).map((s) => ({ ...s, app: ownerOf(s.name) }));
      return app === undefined ? all : all.filter((s) => s.app === app);
    },
    async show(name) {
      const s = await certs.show(name);
      return s && { ...s, app: ownerOf(s.name) };
    },
    async remove(name) {
      const n = name.toLowerCase();
      const had = await certs.remove(n);
      await owners.delete(n);
      rebuild();
      // A name an app's ward.toml still routes stays unmanaged until the server restarts (removing it
      // means "stop", not "issue again"); one no longer routed is managed again if it comes back.
      if (!current?.lookup(n)) known.delete(n);
      return had;
    },
  };

  let closing: Promise<void> | undefined;
  return {
    edge,
    cluster: edgeCluster,
    certs,
    certificates,
    state: () => state,
    error: () => failure,
    addresses: () => (state === 'listening' ? front.addresses() : { http: undefined, https: undefined }),
    async refresh() {
      seen = '';
      await reload();
      await applied;
    },
    async drain(instanceId, timeoutMs) {
      const started = Date.now();
      // A release switch committed by a Deployer in another process: take it before this instance goes.
      await reload().catch((e: unknown) => log.warn({ err: e }, 'routes not reloaded before a drain'));
      // The registry has withdrawn the instance already; the table without it serves every new request.
      rebuild();
      const { inFlight } = state === 'listening' ? await front.drain(instanceId, Math.max(0, timeoutMs - (Date.now() - started))) : { inFlight: 0 };
      const waitedMs = Date.now() - started;
      if (inFlight > 0) log.warn({ instance_id: instanceId, in_flight: inFlight, timeout_ms: timeoutMs }, 'instance not drained within kill_timeout');
      else log.info({ instance_id: instanceId, waited_ms: waitedMs }, 'instance drained');
      return { inFlight, waitedMs };
    },
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        unsubscribe?.();
        await certs.stop();
        if (state === 'listening') await front.stop(2000);
        await accessLog?.close();
        state = 'stopped';
      })();
      return closing;
    },
  };
}

/**
 * ServingApp is an app with a serving release: its newest running or succeeded one. `heldBack` is that
 * release's id while it is a bluegreen deploy still running: its instances stay out of the pool.
 */
interface ServingApp {
  id: string;
  version: number;
  status: string;
  name: string;
  createdAt: string;
  config: AppConfig;
  heldBack: string | undefined;
}

/** currentApps lists every app with a serving release: the newest running or succeeded one. */
async function currentApps(store: Store): Promise<ServingApp[]> {
  const newest = new Map<string, { id: string; version: number; status: string; strategy: string; config: string }>();
  for (const r of await store.releases.listByStatus(['running', 'succeeded'])) {
    const had = newest.get(r.appId);
    if (!had || r.version > had.version) newest.set(r.appId, { id: r.id, version: r.version, status: r.status, strategy: r.strategy, config: r.config });
  }
  const out: ServingApp[] = [];
  for (const [appId, r] of newest) {
    const app = await store.apps.get(appId);
    if (!app) continue;
    const heldBack = r.status === 'running' && r.strategy === 'bluegreen' ? r.id : undefined;
    out.push({ id: appId, version: r.version, status: r.status, name: app.name, createdAt: app.createdAt, config: JSON.parse(r.config) as AppConfig, heldBack });
  }
  return out.sort((x, y) => (x.createdAt < y.createdAt ? -1 : x.createdAt > y.createdAt ? 1 : x.name < y.name ? -1 : 1));
}

/**
 * servable applies the bluegreen hold-back: the instances of a release being deployed bluegreen stay out
 * while the app has any other healthy instance; with none, whatever is healthy serves (an empty pool
 * would answer 503, which is worse than the new set early).
 */
export function servable<T extends { releaseId: string }>(healthy: readonly T[], heldBack: string | undefined): readonly T[] {
  if (heldBack === undefined) return healthy;
  const others = healthy.filter((h) => h.releaseId !== heldBack);
  return others.length > 0 ? others : healthy;
}

/** upstreamsOf pairs the app's healthy instances with a port: the HTTP upstreams, or a `[[services]]` port. */
function upstreamsOf(health: HealthSource | undefined, app: ServingApp, port: number): Upstream[] {
  if (!health) return [];
  if (app.config.httpService?.internalPort === port) return servable(health.upstreams(app.id), app.heldBack).map((u) => ({ id: u.instanceId, host: u.address, port: u.port }));
  return servable(health.healthy(app.id), app.heldBack).flatMap((h) => (h.address ? [{ id: h.instanceId, host: h.address, port }] : []));
}

/** withoutTaken drops the hostnames and TCP ports an older app already has, and records this app's. */
function withoutTaken(app: string, config: AppConfig, names: Set<string>, ports: Set<number>, log: Logger): AppConfig {
  let out = config;
  const svc = config.httpService;
  if (svc) {
    const mine = svc.hostnames.filter((n) => !names.has(n));
    if (mine.length !== svc.hostnames.length) {
      log.warn({ app, hostnames: svc.hostnames.filter((n) => names.has(n)) }, 'hostnames already routed to another app are not routed to this one');
      out = { ...out, httpService: { ...svc, hostnames: mine } };
    }
    mine.forEach((n) => names.add(n));
  }
  const services = config.services.map((s) => {
    if (s.protocol !== 'tcp') return s;
    const kept = s.ports.filter((p) => !ports.has(p.port));
    if (kept.length !== s.ports.length) log.warn({ app, ports: s.ports.filter((p) => ports.has(p.port)).map((p) => p.port) }, 'TCP ports already used by another app are not opened for this one');
    kept.forEach((p) => ports.add(p.port));
    return kept.length === s.ports.length ? s : { ...s, ports: kept };
  });
  return { ...out, services };
}

/** defaultNames maps each HTTP app's `<app>.<domain>` to the app (empty without a server domain). */
function defaultNames(apps: ReadonlyArray<{ name: string; config: AppConfig }>, domain: string | undefined): Map<string, string> {
  return new Map(domain ? apps.filter((a) => a.config.httpService).map((a) => [`${a.name}.${domain}`, a.name] as const) : []);
}

/** withOwnedNames adds the names the app added with `ward certs add` and drops those another app added. */
function withOwnedNames(config: AppConfig, names: string[], mayUse: (name: string) => boolean): AppConfig {
  const svc = config.httpService;
  if (!svc) return config;
  return { ...config, httpService: { ...svc, hostnames: [...new Set([...svc.hostnames.filter(mayUse), ...names])] } };
}

/**
 * CertOwners remembers which app asked for a certificate (`ward certs add -a APP`), in the Store, with
 * a copy in memory for the route table (rebuilt without awaiting); load refreshes the copy.
 */
class CertOwners {
  readonly #store: Store;
  #map = new Map<string, string>();
  constructor(store: Store) {
    this.#store = store;
  }
  async load(): Promise<void> {
    this.#map = new Map((await this.#store.edgeCerts.listOwners()).map((o) => [o.name, o.app]));
  }
  /** signature changes whenever the owners do (reload compares it). */
  signature(): string {
    return [...this.#map].map(([n, a]) => `${n}=${a}`).join(',');
  }
  get(name: string): string | undefined {
    return this.#map.get(name);
  }
  namesOf(app: string): string[] {
    return [...this.#map].filter(([, a]) => a === app).map(([n]) => n);
  }
  async set(name: string, app: string): Promise<void> {
    await this.#store.edgeCerts.setOwner(name, app);
    this.#map.set(name, app);
  }
  async delete(name: string): Promise<void> {
    await this.#store.edgeCerts.deleteOwner(name);
    this.#map.delete(name);
  }
}

/**
 * importFileCerts moves what an earlier Ward kept in `<data dir>/edge` (certs/, cert-owners.json) into
 * the Store, once: names the Store already has are left alone, and the old files are renamed to
 * `*.imported` so the next start does not look again. Keys stay sealed under the same key throughout.
 */
async function importFileCerts(dir: string, files: FileCertStore, to: StoreCertStore, store: Store, directoryUrl: string, log: Logger): Promise<void> {
  const certsDir = join(dir, 'certs');
  const ownersFile = join(dir, 'cert-owners.json');
  if (await stat(certsDir).then(() => true, () => false)) {
    try {
      const copied = await copyCertStore(files, to, [directoryUrl]);
      await rename(certsDir, `${certsDir}.imported`);
      log.info({ names: copied, from: certsDir }, 'certificates imported into the store');
    } catch (e) {
      // Not fatal: the names are ordered again as they are routed. The files stay for another try.
      log.error({ err: e, from: certsDir }, 'certificates not imported into the store');
    }
  }
  let owners: Record<string, string> | undefined;
  try {
    owners = JSON.parse(await readFile(ownersFile, 'utf8')) as Record<string, string>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (owners) {
    for (const [name, app] of Object.entries(owners)) if ((await store.edgeCerts.getOwner(name)) === undefined) await store.edgeCerts.setOwner(name, app);
    await rename(ownersFile, `${ownersFile}.imported`);
  }
}

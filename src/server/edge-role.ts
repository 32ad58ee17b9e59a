/**
 * The edge role of `ward server`: the Edge on --http-listen/--https-listen, in this process, fed from
 * this node's state. Routes come from the apps' current releases (hostnames in their ward.toml, plus
 * `<app>.<domain>` when the server has a domain); upstreams from the agent's HealthRegistry, whose
 * subscribe tells us when an app's healthy instances change: the table is rebuilt then (and every
 * refreshMs for new releases), never per request. Certificates: a CertManager over a FileCertStore in
 * `<data dir>/edge/certs`, keys sealed with the server's sealing key for "edge-certs" (openSealingKeys).
 * See docs/edge.md "The edge role".
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { UserError } from '../core/index.ts';
import type { AppConfig, ServerConfig } from '../config/index.ts';
import type { Store } from '../store/index.ts';
import type { SealingKeys } from '../secrets/index.ts';
import {
  AcmeIssuer,
  aesGcmSealer,
  CertificateCache,
  CertManager,
  ChallengeStore,
  Edge,
  FileCertStore,
  FileIssuanceLock,
  routesFromApps,
  StaticUpstreamSource,
  type AppRoutingInput,
  type CertificateIssuer,
  type CertificateStatus,
  type EdgeAddresses,
  type RouteSource,
  type Upstream,
} from '../edge/index.ts';

/** HealthSource is what the edge reads of the agent's HealthRegistry (server.agent.health). */
export interface HealthSource {
  upstreams(appId: string): ReadonlyArray<{ instanceId: string; address: string; port: number }>;
  healthy(appId: string): ReadonlyArray<{ instanceId: string; address: string | undefined }>;
  subscribe(fn: (appId: string) => void): () => void;
}

export interface EdgeRoleOptions {
  /** health is the agent's registry; without an agent on this node no app has upstreams (503). */
  health: HealthSource | undefined;
  sealing: SealingKeys;
  logger: Logger;
  /** metrics is the registry the edge's metrics go in (the API's /metrics). */
  metrics?: Registry;
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

export interface EdgeRole {
  edge: Edge;
  certs: CertManager;
  certificates: CertificateService;
  state(): EdgeRoleState;
  /** error is the listen failure when state() is listen_failed. */
  error(): UserError | undefined;
  addresses(): EdgeAddresses;
  /** refresh rebuilds the route table from the store and the health registry now. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/** startEdgeRole builds and starts the edge. It fails only on a broken data dir, not on a port it cannot bind. */
export async function startEdgeRole(config: ServerConfig, store: Store, options: EdgeRoleOptions): Promise<EdgeRole> {
  const log = options.logger.child({ role: 'edge' });
  const dir = join(config.dataDir, 'edge');
  const certStore = new FileCertStore(join(dir, 'certs'), aesGcmSealer(await options.sealing.deriveKey('edge-certs')));
  const owners = new CertOwners(join(dir, 'cert-owners.json'));
  await owners.load();
  const challenges = new ChallengeStore();
  const cache = new CertificateCache();
  const edge = new Edge({
    certificates: cache,
    challenges,
    http: config.httpListen,
    https: config.httpsListen,
    ...(config.httpsListen.port ? { publicHttpsPort: config.httpsListen.port } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    log,
  });
  const caPem = config.acmeCaFile ? await readFile(config.acmeCaFile, 'utf8') : undefined;
  const issuer =
    options.issuer ??
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
    lock: new FileIssuanceLock(join(dir, 'locks')),
    issuer,
    cache,
    log,
    onExpiry: (name, notAfter) => edge.metrics?.certificateExpiry.set({ name }, Math.floor(notAfter.getTime() / 1000)),
    onAttempt: (result) => edge.metrics?.certificateRenewals.inc({ result }),
  });

  let state: EdgeRoleState = 'listening';
  let failure: UserError | undefined;
  try {
    await edge.start();
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    state = 'listen_failed';
    failure = e;
    log.error({ code: e.code, hint: e.hint, http_listen: config.httpListen, https_listen: config.httpsListen }, `the edge is not running: ${e.message}`);
  }

  // Route table: rebuilt from the store when releases may have changed, and from memory on health changes.
  let apps: Array<{ id: string; name: string; config: AppConfig }> = [];
  const known = new Set<string>();
  let current: RouteSource | undefined;
  // A name belongs to the app that added it (`ward certs add -a`), else to the app whose ward.toml routes it.
  const ownerOf = (name: string): string | undefined => owners.get(name) ?? current?.lookup(name)?.app;
  const rebuild = (): void => {
    // Names added with `ward certs add -a APP` route to that app, even when another app's ward.toml lists them.
    // A hostname or TCP port two apps claim goes to the older app (apps are listed oldest first): a new
    // app cannot take another tenant's name, nor stop the table from following everyone else's changes.
    const names = new Set<string>();
    const ports = new Set<number>();
    const inputs: AppRoutingInput[] = apps.map((a) => ({
      app: a.name,
      config: withoutTaken(a.name, withOwnedNames(a.config, owners.namesOf(a.name), (n) => (owners.get(n) ?? a.name) === a.name), names, ports, log),
      upstreams: (port: number) => new StaticUpstreamSource(upstreamsOf(options.health, a.id, port, a.config)),
    }));
    let routes: RouteSource;
    try {
      routes = routesFromApps(inputs, { domain: undefined });
    } catch (e) {
      // Two apps claim one name: keep serving the last good table rather than guess whose it is.
      log.error({ err: e }, 'route table not updated');
      return;
    }
    current = routes;
    void edge.setRoutes(routes).catch((e: unknown) => log.error({ err: e }, 'route table not applied'));
    const fresh = routes.hostnames().filter((n) => !known.has(n) && !/^[\d.]+$|^\[/.test(n));
    if (fresh.length > 0 && state === 'listening') {
      fresh.forEach((n) => known.add(n));
      void certs.add(fresh).then(() => certs.tick()).catch((e: unknown) => log.error({ err: e }, 'certificates not added'));
    }
  };
  let seen = '';
  const reload = async (): Promise<void> => {
    const next = await currentApps(store);
    // Health changes rebuild on their own (subscribe); here only a new release or app set does.
    const signature = next.map((a) => `${a.id}@${a.version}`).join(',');
    if (signature === seen) return;
    seen = signature;
    apps = next;
    rebuild();
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
  const a = edge.addresses();
  if (state === 'listening') log.info({ http: a.http && `${a.http.address}:${a.http.port}`, https: a.https && `${a.https.address}:${a.https.port}` }, 'edge listening');

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
      const had = await certs.remove(name);
      await owners.delete(name.toLowerCase());
      known.delete(name.toLowerCase());
      rebuild();
      return had;
    },
  };

  let closing: Promise<void> | undefined;
  return {
    edge,
    certs,
    certificates,
    state: () => state,
    error: () => failure,
    addresses: () => edge.addresses(),
    async refresh() {
      seen = '';
      await reload();
    },
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        unsubscribe?.();
        await certs.stop();
        if (state === 'listening') await edge.stop({ graceMs: 2000 });
        state = 'stopped';
      })();
      return closing;
    },
  };
}

/** currentApps lists every app with a serving release: the newest running or succeeded one. */
async function currentApps(store: Store): Promise<Array<{ id: string; version: number; name: string; config: AppConfig }>> {
  const newest = new Map<string, { version: number; config: string }>();
  for (const r of await store.releases.listByStatus(['running', 'succeeded'])) {
    const had = newest.get(r.appId);
    if (!had || r.version > had.version) newest.set(r.appId, { version: r.version, config: r.config });
  }
  const out: Array<{ id: string; version: number; name: string; createdAt: string; config: AppConfig }> = [];
  for (const [appId, r] of newest) {
    const app = await store.apps.get(appId);
    if (!app) continue;
    out.push({ id: appId, version: r.version, name: app.name, createdAt: app.createdAt, config: JSON.parse(r.config) as AppConfig });
  }
  return out.sort((x, y) => (x.createdAt < y.createdAt ? -1 : x.createdAt > y.createdAt ? 1 : x.name < y.name ? -1 : 1));
}

/** upstreamsOf pairs the app's healthy instances with a port: the HTTP upstreams, or a `[[services]]` port. */
function upstreamsOf(health: HealthSource | undefined, appId: string, port: number, config: AppConfig): Upstream[] {
  if (!health) return [];
  if (config.httpService?.internalPort === port) return health.upstreams(appId).map((u) => ({ id: u.instanceId, host: u.address, port: u.port }));
  return health.healthy(appId).flatMap((h) => (h.address ? [{ id: h.instanceId, host: h.address, port }] : []));
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

/** withOwnedNames adds the names the app added with `ward certs add` and drops those another app added. */
function withOwnedNames(config: AppConfig, names: string[], mayUse: (name: string) => boolean): AppConfig {
  const svc = config.httpService;
  if (!svc) return config;
  return { ...config, httpService: { ...svc, hostnames: [...new Set([...svc.hostnames.filter(mayUse), ...names])] } };
}

/** CertOwners remembers which app asked for a certificate (`ward certs add -a APP`), in one small file. */
class CertOwners {
  readonly #file: string;
  #map = new Map<string, string>();
  constructor(file: string) {
    this.#file = file;
  }
  async load(): Promise<void> {
    try {
      this.#map = new Map(Object.entries(JSON.parse(await readFile(this.#file, 'utf8')) as Record<string, string>));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  get(name: string): string | undefined {
    return this.#map.get(name);
  }
  namesOf(app: string): string[] {
    return [...this.#map].filter(([, a]) => a === app).map(([n]) => n);
  }
  async set(name: string, app: string): Promise<void> {
    this.#map.set(name, app);
    await this.#save();
  }
  async delete(name: string): Promise<void> {
    if (this.#map.delete(name)) await this.#save();
  }
  #saving: Promise<void> = Promise.resolve();
  #save(): Promise<void> {
    // One write at a time: each writes the whole map, so the last one has every change.
    this.#saving = this.#saving.catch(() => {}).then(() => this.#write());
    return this.#saving;
  }
  async #write(): Promise<void> {
    await mkdir(join(this.#file, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${this.#file}.tmp`;
    await writeFile(tmp, JSON.stringify(Object.fromEntries(this.#map)), { mode: 0o600 });
    await rename(tmp, this.#file);
  }
}

import { isIP } from 'node:net';
import type { AppConfig, Hsts } from '../config/index.ts';

/**
 * Upstream is one instance of an app that can take traffic: an address on the private network and the
 * port the app listens on inside the instance. `id` is stable for the instance's life (an instance id);
 * the edge keys its keep-alive pools and least-outstanding counters by `host:port`.
 */
export interface Upstream {
  readonly id: string;
  readonly host: string;
  readonly port: number;
}

/**
 * UpstreamSource says which instances of one route may take new requests right now. healthy is called
 * for every request, so it must be very fast: no I/O, no store query, no sorting or filtering per call;
 * return the same array object until the set changes (the edge caches per array identity). An instance
 * that is being removed is left out of the list at once and is drained: requests already sent to it
 * finish, its idle keep-alive connections are closed, and no new request goes to it.
 */
export interface UpstreamSource {
  healthy(): readonly Upstream[];
}

/**
 * StaticUpstreamSource is an UpstreamSource that its owner updates (the agent's health checker, the
 * control plane's feed, a test). set replaces the list in one assignment, so a request sees either the
 * old list or the new one, never a mix.
 */
export class StaticUpstreamSource implements UpstreamSource {
  #list: readonly Upstream[];
  constructor(upstreams: readonly Upstream[] = []) {
    this.#list = Object.freeze([...upstreams]);
  }
  healthy(): readonly Upstream[] {
    return this.#list;
  }
  set(upstreams: readonly Upstream[]): void {
    this.#list = Object.freeze([...upstreams]);
  }
}

/** ConcurrencyLimits are per-instance limits on requests in flight (Fly's soft_limit and hard_limit). */
export interface ConcurrencyLimits {
  /** softLimit: instances at or above it get new requests only when every instance is. */
  readonly softLimit: number | undefined;
  /** hardLimit: an instance at it gets no new request; when all are, the edge answers 503. */
  readonly hardLimit: number | undefined;
}

/** HttpRoute is where the edge sends HTTP requests for an app's hostnames, and how. */
export interface HttpRoute {
  /** app names the app; metrics and access-log lines are labelled with it. */
  readonly app: string;
  readonly hostnames: readonly string[];
  /** forceHttps redirects plain-HTTP requests to HTTPS (301 for GET and HEAD, 308 otherwise). */
  readonly forceHttps: boolean;
  /** hsts is the Strict-Transport-Security value for every HTTPS response, undefined when turned off. */
  readonly hsts: string | undefined;
  readonly concurrency: ConcurrencyLimits;
  readonly upstreams: UpstreamSource;
}

/**
 * TcpRoute is a public TCP port of an app (`[[services]]`). With `tls` the edge terminates TLS (the
 * certificate is chosen by SNI like for HTTPS) and forwards plaintext; without it the bytes pass through
 * untouched, TLS included. `proxyProtocol` prefixes each upstream connection with a PROXY v1 line.
 */
export interface TcpRoute {
  readonly app: string;
  readonly port: number;
  readonly tls: boolean;
  readonly proxyProtocol: boolean;
  readonly upstreams: UpstreamSource;
}

/**
 * RouteSource is the edge's route table. lookup is called for every request and every TLS handshake:
 * it must be a memory lookup (no I/O). `hostname` is already lower-case, without port or trailing dot.
 * A RouteSource does not change under the edge: a new table is a new RouteSource handed to
 * Edge.setRoutes, which swaps it in one assignment (the instances inside an UpstreamSource may change).
 */
export interface RouteSource {
  lookup(hostname: string): HttpRoute | undefined;
  /** tcpRoutes lists the TCP services; the edge reads it when the table is swapped in. */
  tcpRoutes(): readonly TcpRoute[];
  /** hostnames lists every routed name: the names the edge may need certificates for. */
  hostnames(): readonly string[];
}

/**
 * RouteTable is an immutable RouteSource built from a list of routes. Building refuses a hostname or a
 * TCP port claimed twice (RangeError): the control plane must settle that at deploy time, and an edge
 * that guessed would send one tenant's traffic to another.
 */
export class RouteTable implements RouteSource {
  readonly #byHost: Map<string, HttpRoute>;
  readonly #tcp: readonly TcpRoute[];
  readonly #names: readonly string[];

  constructor(http: readonly HttpRoute[], tcp: readonly TcpRoute[] = []) {
    this.#byHost = new Map();
    for (const route of http) {
      for (const raw of route.hostnames) {
        const name = normalizeHost(raw);
        if (name === undefined) throw new RangeError(`route for app ${route.app}: invalid hostname ${JSON.stringify(raw)}`);
        const other = this.#byHost.get(name);
        if (other) throw new RangeError(`hostname ${name} is claimed by apps ${other.app} and ${route.app}`);
        this.#byHost.set(name, route);
      }
    }
    const ports = new Map<number, string>();
    for (const t of tcp) {
      if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw new RangeError(`app ${t.app}: invalid TCP port ${t.port}`);
      const other = ports.get(t.port);
      if (other !== undefined) throw new RangeError(`TCP port ${t.port} is claimed by apps ${other} and ${t.app}`);
      ports.set(t.port, t.app);
    }
    this.#tcp = Object.freeze([...tcp]);
    this.#names = Object.freeze([...this.#byHost.keys()]);
  }

  lookup(hostname: string): HttpRoute | undefined {
    return this.#byHost.get(hostname);
  }
  tcpRoutes(): readonly TcpRoute[] {
    return this.#tcp;
  }
  hostnames(): readonly string[] {
    return this.#names;
  }
}

/** EMPTY_ROUTES routes nothing: every request gets 404, which is the edge's state before any deploy. */
export const EMPTY_ROUTES: RouteSource = new RouteTable([]);

/**
 * hstsValue renders a Strict-Transport-Security value (RFC 6797 §6.1), or undefined when HSTS is off.
 * max-age is in whole seconds.
 */
export function hstsValue(hsts: Hsts): string | undefined {
  if (!hsts.enabled) return undefined;
  let v = `max-age=${Math.floor(hsts.maxAgeMs / 1000)}`;
  if (hsts.includeSubdomains) v += '; includeSubDomains';
  if (hsts.preload) v += '; preload';
  return v;
}

/** AppRoutingInput is one deployed app as the route builder needs it. */
export interface AppRoutingInput {
  app: string;
  config: AppConfig;
  /** upstreams gives the healthy instances of the app for one internal port. */
  upstreams: (internalPort: number) => UpstreamSource;
}

/**
 * routesFromApps builds a RouteTable from deployed apps' ward.toml. An app without `[http_service]` gets
 * no HTTP route and one without `[[services]]` no TCP port: nothing is reachable unless declared
 * (promise 1). With a server `domain`, every HTTP app also answers on `<app>.<domain>`.
 */
export function routesFromApps(apps: readonly AppRoutingInput[], options: { domain?: string | undefined } = {}): RouteTable {
  const http: HttpRoute[] = [];
  const tcp: TcpRoute[] = [];
  for (const { app, config, upstreams } of apps) {
    const svc = config.httpService;
    if (svc) {
      const names = new Set(svc.hostnames);
      if (options.domain) names.add(`${app}.${options.domain}`.toLowerCase());
      http.push({
        app,
        hostnames: [...names],
        forceHttps: svc.forceHttps,
        hsts: hstsValue(svc.hsts),
        concurrency: { softLimit: svc.concurrency.softLimit, hardLimit: svc.concurrency.hardLimit },
        upstreams: upstreams(svc.internalPort),
      });
    }
    for (const service of config.services) {
      if (service.protocol !== 'tcp') continue; // UDP is not proxied by the edge (docs/edge.md).
      const source = upstreams(service.internalPort);
      for (const p of service.ports) {
        tcp.push({ app, port: p.port, tls: p.handlers.includes('tls'), proxyProtocol: p.handlers.includes('proxy_proto'), upstreams: source });
      }
    }
  }
  return new RouteTable(http, tcp);
}

// A DNS name as it may appear in Host or SNI: LDH labels (RFC 1123), ASCII only (IDNs arrive as A-labels).
const HOSTNAME_RE = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * normalizeHost turns a Host header (or :authority, or SNI) into the route key: lower-case, without the
 * port and one trailing dot. It returns undefined for anything that is not a DNS name or an IP literal,
 * which the edge answers with 400: routing on a malformed Host is how cache-poisoning tricks start.
 */
export function normalizeHost(raw: string): string | undefined {
  let h = raw;
  if (h.length === 0 || h.length > 260) return undefined;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    if (end < 0) return undefined;
    const rest = h.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    const ip = h.slice(1, end);
    return isIP(ip) === 6 ? `[${ip.toLowerCase()}]` : undefined;
  }
  const colon = h.indexOf(':');
  if (colon >= 0) {
    if (!/^\d{1,5}$/.test(h.slice(colon + 1))) return undefined;
    h = h.slice(0, colon);
  }
  h = h.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  return HOSTNAME_RE.test(h) ? h : undefined;
}

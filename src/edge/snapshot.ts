import { RouteTable, StaticUpstreamSource, type RouteSource, type Upstream } from './routes.ts';

/**
 * RouteSnapshot is a route table as data: what the control plane (or the agent on a single node) sends
 * to an edge, and what an edge primary sends to its workers. Upstreams are the healthy instances at the
 * time of the snapshot; a new health state is a new snapshot.
 */
export interface RouteSnapshot {
  http: Array<{
    app: string;
    hostnames: string[];
    forceHttps: boolean;
    hsts: string | undefined;
    concurrency: { softLimit: number | undefined; hardLimit: number | undefined };
    upstreams: Upstream[];
  }>;
  tcp: Array<{ app: string; port: number; tls: boolean; proxyProtocol: boolean; upstreams: Upstream[] }>;
}

/**
 * routeTableFromSnapshot builds a RouteTable from a snapshot. Each route gets its own
 * StaticUpstreamSource; pools are keyed by address in the edge, so connections to an instance survive
 * the swap to a table built from a newer snapshot. It throws RangeError for a conflicting snapshot.
 */
export function routeTableFromSnapshot(s: RouteSnapshot): RouteTable {
  return new RouteTable(
    s.http.map((r) => ({
      app: r.app,
      hostnames: r.hostnames,
      forceHttps: r.forceHttps,
      hsts: r.hsts ?? undefined,
      concurrency: { softLimit: r.concurrency.softLimit ?? undefined, hardLimit: r.concurrency.hardLimit ?? undefined },
      upstreams: new StaticUpstreamSource(r.upstreams),
    })),
    s.tcp.map((t) => ({ app: t.app, port: t.port, tls: t.tls, proxyProtocol: t.proxyProtocol, upstreams: new StaticUpstreamSource(t.upstreams) })),
  );
}

/** snapshotRoutes captures a RouteSource as a snapshot (its current healthy instances). */
export function snapshotRoutes(source: RouteSource): RouteSnapshot {
  const seen = new Set<object>();
  const http: RouteSnapshot['http'] = [];
  for (const name of source.hostnames()) {
    const r = source.lookup(name);
    if (!r || seen.has(r)) continue;
    seen.add(r);
    http.push({
      app: r.app,
      hostnames: [...r.hostnames],
      forceHttps: r.forceHttps,
      hsts: r.hsts,
      concurrency: { softLimit: r.concurrency.softLimit, hardLimit: r.concurrency.hardLimit },
      upstreams: r.upstreams.healthy().map((u) => ({ id: u.id, host: u.host, port: u.port })),
    });
  }
  const tcp = source.tcpRoutes().map((t) => ({ app: t.app, port: t.port, tls: t.tls, proxyProtocol: t.proxyProtocol, upstreams: t.upstreams.healthy().map((u) => ({ id: u.id, host: u.host, port: u.port })) }));
  return { http, tcp };
}

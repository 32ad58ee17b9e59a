/**
 * The edge: Ward's public door. TLS termination with ACME certificates, HSTS, routing by Host to
 * healthy instances, TCP services, limits, access logs and metrics. See docs/edge.md.
 */
export { Edge, DEFAULT_HSTS } from './edge.ts';
export type { EdgeAddresses, EdgeLog, EdgeOptions } from './edge.ts';
export { EMPTY_ROUTES, hstsValue, normalizeHost, RouteTable, routesFromApps, StaticUpstreamSource } from './routes.ts';
export type { AppRoutingInput, ConcurrencyLimits, HttpRoute, RouteSource, TcpRoute, Upstream, UpstreamSource } from './routes.ts';
export { ClientLimiter, DEFAULT_LIMITS } from './limits.ts';
export type { EdgeLimits } from './limits.ts';
export { CertificateMetrics, EdgeMetrics } from './metrics.ts';
export { jsonLinesSink, NULL_ACCESS_LOG } from './access-log.ts';
export type { AccessLogEntry, AccessLogSink } from './access-log.ts';
export { ALPN_ACME, ALPN_H2, ALPN_HTTP1, TLS_CIPHERS, TLS_GROUPS, tlsPolicyOptions } from './tls-policy.ts';
export type { Listen } from './tcp.ts';
export { EdgeCluster } from './cluster.ts';
export type { EdgeClusterOptions, WorkerConfig } from './cluster.ts';
export { routeTableFromSnapshot, snapshotRoutes } from './snapshot.ts';
export type { RouteSnapshot } from './snapshot.ts';
export * from './certs/index.ts';

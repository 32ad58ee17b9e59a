import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * EdgeMetrics are the edge's Prometheus metrics, registered in a registry the caller owns (the process's
 * /metrics, or a test's own). Children are cached per label set, because a label lookup per request
 * (hashing the label values) shows in the proxy's profile.
 */
export class EdgeMetrics {
  readonly requests: Counter<'app' | 'status'>;
  readonly duration: Histogram<'app'>;
  readonly upstreamErrors: Counter<'app' | 'kind'>;
  readonly rejected: Counter<'reason'>;
  readonly handshakes: Counter<'result'>;
  readonly connections: Gauge<'listener'>;
  // app → (status → counter child, and the app's histogram child): no string is built per request.
  readonly #children = new Map<string, { byStatus: Map<number, { inc(n?: number): void }>; duration: { observe(v: number): void } }>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'ward_edge_requests_total', help: 'HTTP requests answered by the edge, by app and status ("-" when no app matched).', labelNames: ['app', 'status'], registers });
    this.duration = new Histogram({
      name: 'ward_edge_request_duration_seconds',
      help: 'Time from request headers to the end of the response, by app.',
      labelNames: ['app'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.upstreamErrors = new Counter({ name: 'ward_edge_upstream_errors_total', help: 'Failed attempts to reach an instance, by app and kind (connect, timeout, reset, retry).', labelNames: ['app', 'kind'], registers });
    this.rejected = new Counter({ name: 'ward_edge_rejected_total', help: 'Requests or connections refused by a limit or a parser, by reason.', labelNames: ['reason'], registers });
    this.handshakes = new Counter({ name: 'ward_edge_tls_handshakes_total', help: 'TLS handshakes, by result (ok, resumed, failed).', labelNames: ['result'], registers });
    this.connections = new Gauge({ name: 'ward_edge_open_connections', help: 'Open client connections, by listener.', labelNames: ['listener'], registers });
  }

  /** observe records one answered request. */
  observe(app: string, status: number, seconds: number): void {
    let c = this.#children.get(app);
    if (!c) {
      c = { byStatus: new Map(), duration: this.duration.labels(app) };
      this.#children.set(app, c);
    }
    let counter = c.byStatus.get(status);
    if (!counter) {
      counter = this.requests.labels(app, String(status));
      c.byStatus.set(status, counter);
    }
    counter.inc();
    c.duration.observe(seconds);
  }
}

/**
 * CertificateMetrics are the certificate manager's metrics. They live apart from EdgeMetrics because
 * certificates are managed once per edge (in the primary process), while EdgeMetrics are kept by every
 * process that serves requests (each cluster worker) and summed.
 */
export class CertificateMetrics {
  readonly expiry: Gauge<'name'>;
  readonly issuances: Counter<'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.expiry = new Gauge({ name: 'ward_edge_certificate_expiry_timestamp_seconds', help: 'When each managed certificate expires (Unix time).', labelNames: ['name'], registers });
    this.issuances = new Counter({ name: 'ward_edge_certificate_issuances_total', help: 'ACME issuance attempts, by result (ok, failed, rate_limited).', labelNames: ['result'], registers });
  }
}

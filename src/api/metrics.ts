import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * ApiMetrics holds the control plane's Prometheus metrics in a registry of its own (not prom-client's
 * global one), so several servers in one test process do not share counters.
 */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route' | 'status'>;
  readonly loginFailures: Counter<'reason'>;
  /** sources add metrics kept in other processes (the edge's workers), as text, to /metrics. */
  readonly sources: Array<() => Promise<string>> = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'ward_' });
    this.requests = new Counter({
      name: 'ward_http_requests_total',
      help: 'API requests answered, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'ward_http_request_duration_seconds',
      help: 'API request latency, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.loginFailures = new Counter({
      name: 'ward_login_failures_total',
      help: 'Refused logins (and password or MFA checks), by reason: invalid_credentials, invalid_otp, throttled.',
      labelNames: ['reason'],
      registers: [this.registry],
    });
  }
}

/**
 * metricsText is the registry's metrics followed by each source's. A source that fails (a worker being
 * restarted) is left out of this scrape rather than failing it.
 */
export async function metricsText(m: ApiMetrics): Promise<string> {
  const parts = [await m.registry.metrics()];
  for (const source of m.sources) parts.push(await source().catch(() => ''));
  return parts.filter((p) => p.trim() !== '').map((p) => p.replace(/\n*$/, '\n')).join('');
}

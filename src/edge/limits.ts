/**
 * EdgeLimits are the edge's protections against abuse a single host can absorb (the seed's DDoS
 * section): sizes, timeouts that starve slowloris-style attacks, and per-client-IP budgets. Limits are
 * per process: with several workers, a client may get up to `workers ×` the per-IP budgets.
 */
export interface EdgeLimits {
  /** maxHeaderBytes caps a request's header block (431 above it). */
  maxHeaderBytes: number;
  /** maxBodyBytes caps a request body (413 above it); 0 means no cap. */
  maxBodyBytes: number;
  /** headersTimeoutMs is the time a client has to send a complete header block (408 and close). */
  headersTimeoutMs: number;
  /** requestTimeoutMs is the time a client has to send a whole request, body included. */
  requestTimeoutMs: number;
  /** keepAliveTimeoutMs closes an idle HTTP/1.1 keep-alive connection. */
  keepAliveTimeoutMs: number;
  /** idleTimeoutMs closes an HTTP/2 session or a TCP-service connection with no traffic. */
  idleTimeoutMs: number;
  /** handshakeTimeoutMs is the time a client has to finish the TLS handshake. */
  handshakeTimeoutMs: number;
  /** maxConnectionsPerIp refuses further connections from one client address. */
  maxConnectionsPerIp: number;
  /** requestsPerSecondPerIp is the sustained request rate per client address (429 above it); 0 is off. */
  requestsPerSecondPerIp: number;
  /** requestBurstPerIp is how many requests above the rate a client may send at once. */
  requestBurstPerIp: number;
  /** maxStreamsPerH2Session caps concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreamsPerH2Session: number;
  /** upstreamConnectTimeoutMs bounds connecting to an instance. */
  upstreamConnectTimeoutMs: number;
  /** upstreamHeadersTimeoutMs bounds waiting for an instance's response headers (504 past it). */
  upstreamHeadersTimeoutMs: number;
  /** upstreamBodyTimeoutMs bounds a pause between two chunks of an instance's response body. */
  upstreamBodyTimeoutMs: number;
  /** upstreamKeepAliveMs keeps idle connections to instances open this long for reuse. */
  upstreamKeepAliveMs: number;
  /** upstreamConnections caps connections per instance per edge process. */
  upstreamConnections: number;
}

/** DEFAULT_LIMITS are the limits of `ward edge`; docs/edge.md explains each choice. */
export const DEFAULT_LIMITS: Readonly<EdgeLimits> = Object.freeze({
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 100 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  handshakeTimeoutMs: 10_000,
  maxConnectionsPerIp: 256,
  requestsPerSecondPerIp: 500,
  requestBurstPerIp: 1000,
  maxStreamsPerH2Session: 100,
  upstreamConnectTimeoutMs: 5_000,
  upstreamHeadersTimeoutMs: 60_000,
  upstreamBodyTimeoutMs: 300_000,
  upstreamKeepAliveMs: 4_000,
  upstreamConnections: 256,
});

interface ClientState {
  connections: number;
  tokens: number;
  /** at is when `tokens` was last refilled, in ms. */
  at: number;
}

/**
 * ClientLimiter keeps the per-client-IP budgets: open connections and a token bucket of requests.
 * Entries for clients with no connection and a full bucket are dropped by sweep, so the map stays as
 * large as the set of recently active clients, not the set of every address ever seen.
 */
export class ClientLimiter {
  readonly #clients = new Map<string, ClientState>();
  readonly #maxConnections: number;
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;

  constructor(limits: Pick<EdgeLimits, 'maxConnectionsPerIp' | 'requestsPerSecondPerIp' | 'requestBurstPerIp'>, now: () => number = Date.now) {
    this.#maxConnections = limits.maxConnectionsPerIp;
    this.#rate = limits.requestsPerSecondPerIp;
    this.#burst = Math.max(1, limits.requestBurstPerIp);
    this.#now = now;
  }

  #state(ip: string): ClientState {
    let s = this.#clients.get(ip);
    if (!s) {
      s = { connections: 0, tokens: this.#burst, at: this.#now() };
      this.#clients.set(ip, s);
    }
    return s;
  }

  /** openConnection counts a new connection; false means the client is at its limit: refuse it. */
  openConnection(ip: string): boolean {
    const s = this.#state(ip);
    if (s.connections >= this.#maxConnections) return false;
    s.connections++;
    return true;
  }

  closeConnection(ip: string): void {
    const s = this.#clients.get(ip);
    if (s && s.connections > 0) s.connections--;
  }

  /**
   * takeRequest spends one request token. It returns 0 when the request may go on, or the number of
   * seconds after which a token will be there (for Retry-After).
   */
  takeRequest(ip: string): number {
    if (this.#rate <= 0) return 0;
    const s = this.#state(ip);
    const now = this.#now();
    const elapsed = now - s.at;
    if (elapsed > 0) {
      s.tokens = Math.min(this.#burst, s.tokens + (elapsed * this.#rate) / 1000);
      s.at = now;
    }
    if (s.tokens >= 1) {
      s.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - s.tokens) / this.#rate));
  }

  /** sweep forgets clients that hold nothing: no connection, and a bucket that has refilled. */
  sweep(): void {
    const now = this.#now();
    for (const [ip, s] of this.#clients) {
      if (s.connections === 0 && (this.#rate <= 0 || s.tokens + ((now - s.at) * this.#rate) / 1000 >= this.#burst)) this.#clients.delete(ip);
    }
  }

  /** size is the number of clients tracked (for tests and metrics). */
  get size(): number {
    return this.#clients.size;
  }
}

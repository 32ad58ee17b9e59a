import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server as HttpServer, type ServerOptions as HttpServerOptions } from 'node:http';
import { createServer as createH2Server, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, type SecureContext, type TLSSocket, type TlsOptions } from 'node:tls';
import type { Registry } from 'prom-client';
import type { AccessLogSink } from './access-log.ts';
import type { ChallengeResponder } from './certs/challenges.ts';
import { OcspStapler } from './certs/ocsp.ts';
import type { KeyAndCertificate } from './certs/self-signed.ts';
import type { CertificateMaterial, CertificateSource } from './certs/source.ts';
import { listenError } from './listen-error.ts';
import { ClientLimiter, DEFAULT_LIMITS, type EdgeLimits } from './limits.ts';
import { EdgeMetrics } from './metrics.ts';
import { clientAddress, handleRequest, handleUpgrade, POISONED, type ProxyContext } from './proxy.ts';
import { EMPTY_ROUTES, type RouteSource } from './routes.ts';
import { TcpServices, type Listen } from './tcp.ts';
import { ALPN_ACME, ALPN_H2, ALPN_HTTP1, tlsPolicyOptions } from './tls-policy.ts';
import { UpstreamPools } from './upstream-pools.ts';

/** EdgeLog is where the edge reports problems; pino's logger fits. It never receives a key or a body. */
export interface EdgeLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const SILENT_LOG: EdgeLog = { info() {}, warn() {}, error() {} };

/** DEFAULT_HSTS is sent on HTTPS answers the edge makes itself (404, 421): one year, RFC 6797. */
export const DEFAULT_HSTS = 'max-age=31536000';

export interface EdgeOptions {
  /** routes is the first route table; Edge.setRoutes swaps in the next ones. Default: route nothing. */
  routes?: RouteSource;
  certificates?: CertificateSource;
  challenges?: ChallengeResponder;
  /** defaultCertificate answers handshakes with an unknown or no SNI; default: a fresh self-signed one. */
  defaultCertificate?: KeyAndCertificate;
  /** http is the plain-HTTP listener (ACME http-01, redirects, force_https = false apps); false: none. */
  http?: Listen | false;
  /** https is the TLS listener; false: none. */
  https?: Listen | false;
  /** publicHttpsPort is the HTTPS port clients use, for redirect Locations; default 443. */
  publicHttpsPort?: number;
  /** tcpBind maps a `[[services]]` port to where it listens; default: the HTTPS host, same port. */
  tcpBind?: (port: number) => Listen;
  limits?: Partial<EdgeLimits>;
  /** metrics is the registry to register the edge's metrics in; none: no metrics. */
  metrics?: Registry;
  accessLog?: AccessLogSink;
  log?: EdgeLog;
  /**
   * ocsp staples OCSP responses for certificates that name a responder (fetched in the background,
   * never waited for); default a new OcspStapler, false: no stapling.
   */
  ocsp?: OcspStapler | false;
  /** ticketKeys (48 bytes) encrypt TLS session tickets; share them across workers for resumption. */
  ticketKeys?: Buffer;
  /** http2 offers h2 by ALPN; default true. */
  http2?: boolean;
  /** reusePort binds listeners with SO_REUSEPORT, so cluster workers each accept on their own socket. */
  reusePort?: boolean;
  /** requestIdPrefix starts every request id (default: random), unique per process. */
  requestIdPrefix?: string;
}

/** EdgeAddresses are the bound listeners (ports are real even when 0 was asked for). */
export interface EdgeAddresses {
  http: AddressInfo | undefined;
  https: AddressInfo | undefined;
}

const kAcme = Symbol('ward.acme-tls');


/**
 * Edge is the public door: the HTTP and HTTPS listeners, TCP services, and the proxy to healthy
 * instances. It holds no state of its own that matters across restarts: routes come from a RouteSource,
 * certificates from a CertificateSource, challenges from a ChallengeResponder. start binds the
 * listeners; stop drains them (in-flight requests finish within a grace period); setRoutes swaps the
 * route table for every new request at once.
 */
export class Edge {
  readonly #o: EdgeOptions;
  readonly #limits: EdgeLimits;
  readonly #log: EdgeLog;
  readonly metrics: EdgeMetrics | undefined;
  readonly #limiter: ClientLimiter;
  readonly #pools: UpstreamPools;
  readonly #ctx: ProxyContext;
  readonly #contexts = new WeakMap<CertificateMaterial, SecureContext>();
  readonly #sessions = new Set<ServerHttp2Session>();
  // Upgraded (WebSocket) connections have left Node's HTTP bookkeeping; stop closes them itself.
  readonly #upgraded = new Set<Duplex>();
  #routes: RouteSource;
  #certificates: CertificateSource | undefined;
  readonly #ocsp: OcspStapler | undefined;
  #ticketKeys: Buffer;
  #default: KeyAndCertificate | undefined;
  #defaultContext: SecureContext | undefined;
  #http: HttpServer | undefined;
  #https: HttpsServer | undefined;
  #tcp: TcpServices | undefined;
  #timers: NodeJS.Timeout[] = [];
  #started = false;

  constructor(options: EdgeOptions = {}) {
    this.#o = options;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#log = options.log ?? SILENT_LOG;
    this.metrics = options.metrics ? new EdgeMetrics(options.metrics) : undefined;
    this.#limiter = new ClientLimiter(this.#limits);
    this.#pools = new UpstreamPools(this.#limits);
    this.#routes = options.routes ?? EMPTY_ROUTES;
    this.#certificates = options.certificates;
    this.#ocsp = options.ocsp === false ? undefined : (options.ocsp ?? new OcspStapler({ log: this.#log }));
    this.#ticketKeys = options.ticketKeys ?? randomBytes(48);
    const prefix = options.requestIdPrefix ?? randomBytes(4).toString('hex');
    let n = 0;
    this.#ctx = {
      routes: () => this.#routes,
      pools: this.#pools,
      limiter: this.#limiter,
      limits: this.#limits,
      metrics: this.metrics,
      accessLog: options.accessLog,
      challenges: options.challenges,
      publicHttpsPort: options.publicHttpsPort ?? 443,
      defaultHsts: DEFAULT_HSTS,
      nextRequestId: () => `${prefix}-${(++n).toString(36)}`,
    };
  }

  /** routes is the current route table. */
  get routes(): RouteSource {
    return this.#routes;
  }

  /**
   * setRoutes swaps in a new route table: every request that starts after the call uses it, and every
   * request already running keeps the route it had. TCP service listeners are opened and closed to
   * match; the promise settles when they are.
   */
  async setRoutes(routes: RouteSource): Promise<void> {
    this.#routes = routes;
    if (this.#tcp) await this.#tcp.sync(routes.tcpRoutes());
  }

  /**
   * drain waits until no request is in flight to the instance with upstream id `id` (at most timeoutMs)
   * and closes its keep-alive connections. The caller has taken the instance out of the route table
   * first (setRoutes): from then on no new request picks it, so the count only falls. It resolves with
   * what was still in flight when the time ran out (0 when drained).
   */
  drain(id: string, timeoutMs: number): Promise<{ inFlight: number }> {
    return this.#pools.drain(id, timeoutMs);
  }

  /** inFlight is the number of requests in flight to the instance with upstream id `id`. */
  inFlight(id: string): number {
    return this.#pools.inFlight(id);
  }

  /** setCertificates swaps the certificate source (new handshakes use it). */
  setCertificates(source: CertificateSource): void {
    this.#certificates = source;
  }

  /** setTicketKeys rotates the session ticket keys (48 bytes) of the HTTPS listener. */
  setTicketKeys(keys: Buffer): void {
    this.#ticketKeys = keys;
    this.#https?.setTicketKeys(keys);
  }

  /** addresses are the bound listeners; tcpAddress finds a `[[services]]` port's listener. */
  addresses(): EdgeAddresses {
    const a = (s: { address(): AddressInfo | string | null } | undefined) => {
      const x = s?.address();
      return x && typeof x === 'object' ? x : undefined;
    };
    return { http: a(this.#http), https: a(this.#https) };
  }

  tcpAddress(port: number): AddressInfo | undefined {
    return this.#tcp?.address(port);
  }

  /** start binds the listeners. It fails (and binds nothing) when a port is taken. */
  async start(): Promise<void> {
    if (this.#started) throw new Error('the edge is already started');
    this.#started = true;
    const lim = this.#limits;
    // Loaded only when needed: the X.509 library is large, and cluster workers are always given one.
    this.#default = this.#o.defaultCertificate ?? (await (await import('./certs/self-signed.ts')).selfSignedCertificate());
    this.#defaultContext = createSecureContext(this.#contextOptions(this.#default.keyPem, this.#default.certPem));
    const httpOptions: HttpServerOptions = {
      maxHeaderSize: lim.maxHeaderBytes,
      insecureHTTPParser: false,
      requireHostHeader: true,
      joinDuplicateHeaders: false,
      headersTimeout: lim.headersTimeoutMs,
      requestTimeout: lim.requestTimeoutMs,
      keepAliveTimeout: lim.keepAliveTimeoutMs,
      // Node checks header and request deadlines on this interval; its default (30 s) would let a
      // slowloris socket live that much past headersTimeout.
      connectionsCheckingInterval: Math.min(1000, lim.headersTimeoutMs),
      noDelay: true,
      keepAlive: true,
    };
    try {
      if (this.#o.http !== false) {
        const server = createHttpServer(httpOptions);
        this.#wireHttp1(server, false, 'http');
        await this.#listen(server, this.#o.http ?? { host: '::', port: 80 });
        this.#http = server;
      }
      if (this.#o.https !== false) {
        const server = createHttpsServer({ ...httpOptions, ...this.#tlsOptions() });
        this.#wireHttp1(server, true, 'https');
        this.#wireTls(server);
        await this.#listen(server, this.#o.https ?? { host: '::', port: 443 });
        this.#https = server;
      }
      const httpsHost = this.#o.https ? this.#o.https.host : '::';
      this.#tcp = new TcpServices({
        bind: this.#o.tcpBind ?? ((port) => ({ host: httpsHost, port })),
        tlsOptions: () => this.#tlsOptions(false),
        limiter: this.#limiter,
        metrics: this.metrics,
        idleTimeoutMs: lim.idleTimeoutMs,
        handshakeTimeoutMs: lim.handshakeTimeoutMs,
        connectTimeoutMs: lim.upstreamConnectTimeoutMs,
        reusePort: this.#o.reusePort ?? false,
        onError: (message, err) => this.#log.error({ err }, message),
      });
      await this.#tcp.sync(this.#routes.tcpRoutes());
    } catch (e) {
      await this.stop({ graceMs: 0 });
      throw e;
    }
    this.#timers.push(setInterval(() => this.#pools.reap(this.#routes), 5_000).unref());
    this.#timers.push(setInterval(() => this.#limiter.sweep(), 60_000).unref());
  }

  /**
   * stop closes the listeners, lets requests in flight finish for up to graceMs (HTTP/2 sessions get a
   * GOAWAY, idle keep-alive connections close at once), then closes whatever is left.
   */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    const grace = options.graceMs ?? 10_000;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    const servers = [this.#http, this.#https].filter((s): s is HttpServer => s !== undefined);
    this.#http = undefined;
    this.#https = undefined;
    const closed = servers.map((s) => new Promise<void>((resolve) => {
      if (!s.listening) return resolve();
      s.close(() => resolve());
      s.closeIdleConnections();
    }));
    for (const session of this.#sessions) session.close();
    const tcp = this.#tcp?.close(grace);
    const timeout = new Promise<'timeout'>((resolve) => {
      const t = setTimeout(() => resolve('timeout'), grace);
      t.unref();
    });
    const result = await Promise.race([Promise.all(closed).then(() => 'closed' as const), timeout]);
    // WebSockets live as long as their users want; a stopping edge ends them at the grace period.
    if (result === 'timeout' || this.#sessions.size > 0) {
      for (const s of servers) s.closeAllConnections();
      for (const session of this.#sessions) session.destroy();
      for (const socket of this.#upgraded) socket.destroy();
      await Promise.all(closed);
    }
    await tcp;
    await (result === 'timeout' ? this.#pools.destroy() : this.#pools.close());
  }

  #listen(server: HttpServer | HttpsServer, at: Listen): Promise<void> {
    const reusePort = this.#o.reusePort ?? false;
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(at, e)));
      // exclusive with reusePort: a cluster worker binds its own SO_REUSEPORT socket instead of asking the
      // primary for a shared one, so the kernel spreads connections evenly across workers.
      server.listen({ host: at.host, port: at.port, exclusive: reusePort, reusePort }, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
  }

  #contextOptions(key: string, cert: string): TlsOptions {
    return { ...tlsPolicyOptions(), key, cert, ticketKeys: this.#ticketKeys, sessionTimeout: 3600 };
  }

  #contextFor(m: CertificateMaterial): SecureContext {
    let c = this.#contexts.get(m);
    if (!c) {
      c = createSecureContext(this.#contextOptions(m.key, m.cert));
      this.#contexts.set(m, c);
      this.#ocsp?.warm(m);
    }
    return c;
  }

  /** #tlsOptions are the options of a TLS listener: the policy, the default certificate, SNI and ALPN. */
  #tlsOptions(withAlpn = true): TlsOptions {
    const edge = this;
    const h2 = this.#o.http2 ?? true;
    const challenges = this.#o.challenges;
    const options: TlsOptions = {
      ...this.#contextOptions(this.#default!.keyPem, this.#default!.certPem),
      handshakeTimeout: this.#limits.handshakeTimeoutMs,
      SNICallback(this: unknown, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) {
        // Node calls this with the TLS socket as `this`; ALPNCallback ran first and marked ACME probes.
        const socket = this as TLSSocket & { [kAcme]?: boolean };
        const name = servername.toLowerCase();
        if (socket[kAcme]) {
          const ctx = challenges?.tlsAlpn01(name);
          return ctx ? cb(null, ctx) : cb(new Error('no tls-alpn-01 challenge for this name'));
        }
        const m = edge.#certificates?.getCertificate(name);
        cb(null, m ? edge.#contextFor(m) : edge.#defaultContext);
      },
    };
    if (withAlpn) {
      options.ALPNCallback = function (this: unknown, { servername, protocols }: { servername: string; protocols: string[] }): string | undefined {
        if (challenges && servername && protocols.includes(ALPN_ACME) && challenges.tlsAlpn01(servername.toLowerCase())) {
          (this as { [kAcme]?: boolean })[kAcme] = true;
          return ALPN_ACME;
        }
        if (h2 && protocols.includes(ALPN_H2)) return ALPN_H2;
        if (protocols.includes(ALPN_HTTP1)) return ALPN_HTTP1;
        // RFC 7301 §3.2: no protocol in common is a fatal no_application_protocol alert.
        return undefined;
      } as TlsOptions['ALPNCallback'];
    }
    return options;
  }

  #wireHttp1(server: HttpServer | HttpsServer, secure: boolean, label: string): void {
    const ctx = this.#ctx;
    const metrics = this.metrics;
    server.on('request', (req: IncomingMessage, res) => handleRequest(ctx, req, res, secure));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#upgraded.add(socket);
      socket.once('close', () => this.#upgraded.delete(socket));
      handleUpgrade(ctx, req, socket, head, secure);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Node's parser refused the request (smuggling vectors, bad framing, oversized headers) or a
      // deadline passed. The answer says no more than the status, and the connection is closed: what
      // follows on it cannot be trusted to be a request boundary.
      const code = err.code ?? '';
      if (code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      if ((socket as Duplex & { [POISONED]?: boolean })[POISONED]) {
        // The edge already refused a request on this connection and is closing it after that answer.
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
      const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      metrics?.rejected.inc({ reason: status === 408 ? 'timeout' : status === 431 ? 'headers_too_large' : 'malformed' });
      metrics?.observe('-', status, 0);
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
    });
    this.#countConnections(server, label);
  }

  #countConnections(server: HttpServer | HttpsServer, label: string): void {
    const limiter = this.#limiter;
    const metrics = this.metrics;
    server.prependListener('connection', (socket: Socket) => {
      const ip = clientAddress(socket.remoteAddress);
      if (!limiter.openConnection(ip)) {
        metrics?.rejected.inc({ reason: 'connections_per_ip' });
        socket.destroy();
        return;
      }
      metrics?.connections.inc({ listener: label });
      socket.once('close', () => {
        limiter.closeConnection(ip);
        metrics?.connections.dec({ listener: label });
      });
    });
  }

  #wireTls(server: HttpsServer): void {
    const metrics = this.metrics;
    const lim = this.#limits;
    const h2 = createH2Server({
      settings: { maxConcurrentStreams: lim.maxStreamsPerH2Session, maxHeaderListSize: lim.maxHeaderBytes, enablePush: false },
      maxSessionMemory: 10,
      maxHeaderListPairs: 256,
    });
    h2.setTimeout(lim.idleTimeoutMs);
    const ctx = this.#ctx;
    h2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => handleRequest(ctx, req, res, true));
    h2.on('session', (session: ServerHttp2Session) => {
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
      session.on('error', () => {});
    });
    h2.on('sessionError', () => {});
    // https.Server hands every TLS connection to its HTTP/1.1 handler; ALPN decides here instead.
    const http1 = server.listeners('secureConnection') as Array<(s: TLSSocket) => void>;
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: TLSSocket) => {
      metrics?.handshakes.inc({ result: socket.isSessionReused() ? 'resumed' : 'ok' });
      const alpn = socket.alpnProtocol;
      if (alpn === ALPN_H2) {
        h2.emit('connection', socket);
      } else if (alpn === ALPN_ACME) {
        // RFC 8737 §3: the validator only needs the handshake; nothing is served on this connection.
        socket.destroy();
      } else {
        for (const l of http1) l.call(server, socket);
      }
    });
    server.on('tlsClientError', () => metrics?.handshakes.inc({ result: 'failed' }));
    const ocsp = this.#ocsp;
    if (ocsp) {
      // Only for clients that ask (status_request); the answer is from memory, or no staple at all.
      server.on('OCSPRequest', (leaf: Buffer, _issuer: Buffer, cb: (err: Error | null, response: Buffer | null) => void) => cb(null, ocsp.forLeaf(leaf) ?? null));
    }
  }
}

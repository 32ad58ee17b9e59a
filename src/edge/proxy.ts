import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Dispatcher } from 'undici';
import type { AccessLogSink } from './access-log.ts';
import { ACME_CHALLENGE_PREFIX, type ChallengeResponder } from './certs/challenges.ts';
import type { ClientLimiter, EdgeLimits } from './limits.ts';
import type { EdgeMetrics } from './metrics.ts';
import { normalizeHost, type HttpRoute, type RouteSource } from './routes.ts';
import { BUSY, type PoolState, type UpstreamPools } from './upstream-pools.ts';

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/**
 * ProxyContext is what the request path reads. `routes` is a function so that Edge.setRoutes swaps the
 * table for every request at once (one assignment in the edge).
 */
export interface ProxyContext {
  routes(): RouteSource;
  pools: UpstreamPools;
  limiter: ClientLimiter;
  limits: EdgeLimits;
  metrics: EdgeMetrics | undefined;
  accessLog: AccessLogSink | undefined;
  challenges: ChallengeResponder | undefined;
  /** publicHttpsPort goes into redirect Locations (omitted when 443). */
  publicHttpsPort: number;
  /** defaultHsts is sent on HTTPS answers the edge makes itself when no app's setting applies. */
  defaultHsts: string;
  /** nextRequestId returns a new request id; unique across the edge's processes. */
  nextRequestId(): string;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones a client must not be able to set for the backend:
// the X-Forwarded-* family, Forwarded and X-Real-IP are the edge's to write, never the client's.
const DROP_REQUEST = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization',
  'expect', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip', 'x-request-id',
  'http2-settings',
]);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'strict-transport-security']);
// RFC 9110 §9.2.2: only these may be retried without the client's consent.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
// Errors that mean the request never reached the instance's application: safe to try another.
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']);
const MAX_ATTEMPTS = 3;

/**
 * POISONED marks a connection the edge refused a request on. Node's parser may already have read
 * requests pipelined behind the refused one (the bytes a smuggling attempt hides in a body); those are
 * never answered or forwarded, and the connection closes after the refusal.
 */
export const POISONED = Symbol('ward.edge.poisoned');
type Poisonable = { [POISONED]?: boolean };

// kCurrent is the exchange in flight on an HTTP/1 connection (Node answers one request per connection at a
// time); one 'close' listener per connection aborts it, instead of one listener per request.
const kCurrent = Symbol('ward.edge.current');
type Tracked = { [kCurrent]?: Exchange | undefined; once(event: 'close', l: () => void): unknown };

/** clientAddress is the peer's IP with an IPv4-mapped IPv6 prefix removed. */
export function clientAddress(remote: string | undefined): string {
  if (!remote) return '-';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

function sniOf(req: Req): string | undefined {
  // For HTTP/2 the compat layer's socket is a proxy of the session's TLS socket.
  const s = req.socket as TLSSocket | undefined;
  const name = s?.servername;
  return typeof name === 'string' ? name : undefined;
}

/**
 * handleRequest answers one HTTP request: edge-local answers (ACME http-01, redirects, 404, 421, 429,
 * 503) or a proxied exchange with an instance. `secure` says it arrived over TLS.
 */
export function handleRequest(ctx: ProxyContext, req: Req, res: Res, secure: boolean): void {
  if ((req.socket as Poisonable | undefined)?.[POISONED]) return;
  const ex = new Exchange(ctx, req, res, secure);
  ex.run();
}

/**
 * Exchange is one request's state. It is also the undici dispatch handler, so a proxied request costs
 * one object of ours, not a closure per callback.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly ctx: ProxyContext;
  readonly req: Req;
  readonly res: Res;
  readonly secure: boolean;
  readonly started = performance.now();
  readonly id: string;
  readonly client: string;
  host = '-';
  route: HttpRoute | undefined;
  upstream: PoolState | undefined;
  /** served is the instance the last attempt went to (kept for the access log after release). */
  served: PoolState | undefined;
  headers: string[] = [];
  hasBody = false;
  attempts = 0;
  bytes = 0;
  status = 0;
  done = false;
  abortUpstream: ((err?: Error) => void) | undefined;
  resume: (() => void) | undefined;
  responded = false;

  constructor(ctx: ProxyContext, req: Req, res: Res, secure: boolean) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.secure = secure;
    this.id = ctx.nextRequestId();
    this.client = clientAddress(req.socket?.remoteAddress);
  }

  run(): void {
    const { ctx, req } = this;
    const wait = ctx.limiter.takeRequest(this.client);
    if (wait > 0) {
      ctx.metrics?.rejected.inc({ reason: 'rate_limit' });
      return this.local(429, 'too many requests from this address\n', ['retry-after', String(wait)]);
    }
    const h1 = req.httpVersionMajor === 1;
    let hostHeader: string | undefined;
    if (h1) {
      const h = this.readH1Headers(req as IncomingMessage);
      if (h === false) return; // readH1Headers answered 400.
      hostHeader = h;
    } else {
      hostHeader = this.readH2Headers(req as Http2ServerRequest);
    }
    const host = hostHeader === undefined ? undefined : normalizeHost(hostHeader);
    if (host === undefined) return this.reject(400, 'bad_host', 'missing or malformed Host\n');
    this.host = host;
    const url = req.url ?? '';
    if (url.charCodeAt(0) !== 47 /* / */ && !(url === '*' && req.method === 'OPTIONS')) {
      // An absolute-form target would name a second authority beside Host; a reverse proxy accepts
      // origin-form only (RFC 9112 §3.2.1–2), so there is exactly one name to route on.
      return this.reject(400, 'bad_target', 'request target must be a path\n');
    }
    if (!this.secure && ctx.challenges && url.startsWith(ACME_CHALLENGE_PREFIX)) {
      const token = url.slice(ACME_CHALLENGE_PREFIX.length);
      const keyAuth = /^[A-Za-z0-9_-]+$/.test(token) ? ctx.challenges.http01(token) : undefined;
      if (keyAuth !== undefined) return this.local(200, keyAuth, ['content-type', 'text/plain']);
    }
    const routes = ctx.routes();
    const route = routes.lookup(host);
    if (!route) return this.local(404, 'no app is served at this hostname\n');
    this.route = route;
    if (this.secure) {
      // The TLS session was set up for the SNI name's app; a Host naming another app on it is refused so
      // one tenant's connection (or a coalesced HTTP/2 connection) can never reach another tenant
      // (RFC 9110 §15.5.20: 421 tells the client to open a new connection for that name).
      const sni = sniOf(req);
      const sniRoute = sni === undefined ? undefined : routes.lookup(sni.toLowerCase());
      if (sniRoute !== route) return this.reject(421, 'misdirected', 'this connection is not for that hostname\n', false);
    } else if (route.forceHttps) {
      const port = ctx.publicHttpsPort === 443 ? '' : `:${ctx.publicHttpsPort}`;
      const m = req.method;
      // RFC 9110 §15.4.2/RFC 9538 §3: 301 lets clients turn a POST into a GET; 308 keeps method and body.
      return this.local(m === 'GET' || m === 'HEAD' ? 301 : 308, '', ['location', `https://${host}${port}${url}`]);
    }
    const max = ctx.limits.maxBodyBytes;
    if (max > 0 && this.hasBody) {
      const cl = req.headers['content-length'];
      if (cl !== undefined && Number(cl) > max) return this.reject(413, 'body_too_large', 'request body too large\n');
    }
    if (req.httpVersionMajor === 1) {
      const socket = req.socket as unknown as Tracked;
      if (!(kCurrent in socket)) socket.once('close', () => socket[kCurrent]?.onClientClose());
      socket[kCurrent] = this;
    } else {
      this.res.on('close', () => this.onClientClose());
    }
    this.dispatch(undefined);
  }

  /**
   * readH1Headers copies the request headers for the instance, dropping hop-by-hop ones, and applies the
   * framing rules Node's parser leaves to the application. It returns the Host value (undefined when
   * absent), or false after answering 400 itself.
   */
  readH1Headers(req: IncomingMessage): string | undefined | false {
    const raw = req.rawHeaders;
    const out = this.headers;
    let host: string | undefined;
    let hosts = 0;
    let connection: string | undefined;
    let te: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      const lower = name.toLowerCase();
      if (lower === 'host') {
        hosts++;
        host = value;
      } else if (DROP_REQUEST.has(lower)) {
        if (lower === 'connection') connection = connection === undefined ? value : `${connection},${value}`;
        else if (lower === 'transfer-encoding') te = te === undefined ? value : `${te},${value}`;
        continue;
      } else if (lower === 'content-length') {
        this.hasBody = value !== '0';
      }
      out.push(name, value);
    }
    if (te !== undefined) {
      // Node accepts `identity, chunked` and HTTP/1.0 with chunked; both are framing a second parser may
      // read differently, so anything but a single `chunked` on HTTP/1.1 is refused (RFC 9112 §6.1).
      if (req.httpVersionMinor === 0 || te.trim().toLowerCase() !== 'chunked') {
        this.reject(400, 'bad_framing', 'unsupported Transfer-Encoding\n');
        return false;
      }
      this.hasBody = true;
    }
    if (hosts > 1) {
      // RFC 9112 §3.2: a request with more than one Host is answered with 400.
      this.reject(400, 'bad_host', 'more than one Host header\n');
      return false;
    }
    if (connection !== undefined) {
      // Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
      const named = connection.toLowerCase().split(',').map((s) => s.trim()).filter((s) => s && s !== 'close' && s !== 'keep-alive');
      if (named.length > 0) {
        const keep: string[] = [];
        for (let i = 0; i < out.length; i += 2) if (!named.includes(out[i]!.toLowerCase())) keep.push(out[i]!, out[i + 1]!);
        this.headers = keep;
      }
    }
    return host;
  }

  readH2Headers(req: Http2ServerRequest): string | undefined {
    const h = req.headers;
    const out = this.headers;
    const authority = (h[':authority'] as string | undefined) ?? (h.host as string | undefined);
    for (const name of Object.keys(h)) {
      if (name.charCodeAt(0) === 58 /* : */ || name === 'host' || DROP_REQUEST.has(name)) continue;
      const v = h[name];
      if (Array.isArray(v)) for (const one of v) out.push(name, one);
      else if (v !== undefined) out.push(name, v);
    }
    if (authority !== undefined) out.push('host', authority);
    this.hasBody = !req.stream.endAfterHeaders;
    return authority;
  }

  dispatch(failed: PoolState | undefined): void {
    if (this.attempts > 0) {
      // A retry reads the current table: an instance drained (or stopped) since the request arrived is no
      // longer in it. The same app only: the tenant checks were made for this route's app.
      const now = this.ctx.routes().lookup(this.host);
      if (now && now.app === this.route!.app) this.route = now;
    }
    const route = this.route!;
    const picked = this.ctx.pools.pick(route.upstreams.healthy(), route.concurrency, failed);
    if (picked === undefined) {
      if (failed) return this.local(502, 'the app did not answer\n');
      return this.local(503, 'no healthy instance of this app\n', ['retry-after', '5']);
    }
    if (picked === BUSY) {
      this.ctx.metrics?.rejected.inc({ reason: 'concurrency' });
      return this.local(503, 'the app is at its concurrency limit\n', ['retry-after', '1']);
    }
    this.attempts++;
    this.upstream = picked;
    this.served = picked;
    picked.outstanding++;
    const headers = this.attempts === 1 ? this.withForwarded() : this.headers;
    const body = this.hasBody ? this.body() : null;
    picked.pool.dispatch({ path: this.req.url ?? '/', method: this.req.method as Dispatcher.HttpMethod, headers, body: body as Dispatcher.DispatchOptions['body'], idempotent: false, blocking: true }, this);
  }

  withForwarded(): string[] {
    const h = this.headers;
    h.push('x-forwarded-for', this.client, 'x-forwarded-proto', this.secure ? 'https' : 'http', 'x-forwarded-host', this.host, 'x-request-id', this.id);
    return h;
  }

  body(): AsyncIterable<Buffer> | Req {
    const max = this.ctx.limits.maxBodyBytes;
    if (max <= 0) return this.req;
    const req = this.req;
    const self = this;
    return (async function* limited() {
      // A manual loop, not for-await: leaving for-await early destroys the request stream and with it the
      // socket, and the client would never see the 413.
      const it = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      let n = 0;
      for (;;) {
        const { value, done } = await it.next();
        if (done) return;
        n += value.length;
        if (n > max) {
          self.ctx.metrics?.rejected.inc({ reason: 'body_too_large' });
          throw Object.assign(new Error('request body too large'), { code: 'WARD_BODY_TOO_LARGE' });
        }
        yield value;
      }
    })();
  }

  // undici's dispatch handler (the callback form, which hands over raw header buffers).

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.done) abort();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 100 Continue and 103 Early Hints are not relayed.
    this.resume = resume;
    const out: string[] = [];
    let named: string[] | undefined;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1');
      const lower = name.toLowerCase();
      if (DROP_RESPONSE.has(lower)) {
        if (lower === 'connection') named = rawHeaders[i + 1]!.toString('latin1').toLowerCase().split(',').map((s) => s.trim());
        continue;
      }
      out.push(name, rawHeaders[i + 1]!.toString('latin1'));
    }
    if (named) {
      for (let i = out.length - 2; i >= 0; i -= 2) if (named.includes(out[i]!.toLowerCase())) out.splice(i, 2);
    }
    out.push('x-request-id', this.id);
    const hsts = this.route?.hsts;
    if (this.secure && hsts !== undefined) out.push('strict-transport-security', hsts);
    this.status = statusCode;
    this.responded = true;
    try {
      (this.res as ServerResponse).writeHead(statusCode, out);
    } catch {
      // An instance sent a header Node refuses to relay (bad characters): that is a broken response.
      this.ctx.metrics?.upstreamErrors.inc({ app: this.route!.app, kind: 'bad_response' });
      this.responded = false;
      this.status = 0;
      this.abortUpstream?.();
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    const ok = (this.res as ServerResponse).write(chunk);
    if (!ok) {
      this.res.once('drain', this.resume!);
      return false;
    }
    return true;
  }

  onComplete(): void {
    this.release();
    this.res.end();
    this.finish();
  }

  onError(err: Error): void {
    this.release();
    const code = (err as { code?: string }).code ?? '';
    if (this.done) return; // The client went away first.
    const app = this.route!.app;
    if (this.responded) {
      // Headers are out: the only honest signal left is to break the response.
      this.ctx.metrics?.upstreamErrors.inc({ app, kind: 'reset' });
      this.status = this.status || 502;
      this.res.destroy();
      this.finish();
      return;
    }
    if (code === 'WARD_BODY_TOO_LARGE') return this.reject(413, 'body_too_large', 'request body too large\n');
    if (code === 'UND_ERR_HEADERS_TIMEOUT') {
      this.ctx.metrics?.upstreamErrors.inc({ app, kind: 'timeout' });
      return this.local(504, 'the app did not answer in time\n');
    }
    this.ctx.metrics?.upstreamErrors.inc({ app, kind: CONNECT_ERRORS.has(code) ? 'connect' : 'other' });
    // Retry only what cannot have had an effect twice: an idempotent method, no body (a stream cannot be
    // replayed), and a failure before the instance answered anything.
    if (CONNECT_ERRORS.has(code) && !this.hasBody && IDEMPOTENT.has(this.req.method ?? '') && this.attempts < MAX_ATTEMPTS) {
      this.ctx.metrics?.upstreamErrors.inc({ app, kind: 'retry' });
      const failed = code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' ? undefined : this.upstream;
      return this.dispatch(failed);
    }
    this.local(502, 'the app did not answer\n');
  }

  release(): void {
    if (this.upstream) {
      this.upstream.outstanding--;
      this.upstream = undefined;
    }
  }

  onClientClose(): void {
    if (this.done) return;
    // The client left before the response was complete: stop the instance's work too.
    this.done = true;
    this.status = this.status || 499;
    this.abortUpstream?.(Object.assign(new Error('client closed the connection'), { code: 'WARD_CLIENT_GONE' }));
    this.log();
  }

  /** local answers from the edge itself. */
  local(status: number, body: string, extra?: string[]): void {
    if (this.done) return;
    const res = this.res as ServerResponse;
    if (res.headersSent) {
      res.destroy();
      this.status = status;
      this.finish();
      return;
    }
    const headers = ['content-type', 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'x-request-id', this.id];
    if (this.secure) headers.push('strict-transport-security', this.route?.hsts ?? this.ctx.defaultHsts);
    if (extra) headers.push(...extra);
    this.status = status;
    res.writeHead(status, headers);
    res.end(this.req.method === 'HEAD' ? undefined : body);
    this.bytes = body.length;
    this.finish();
  }

  /** reject answers a malformed or refused request and closes the connection (HTTP/1) after it. */
  reject(status: number, reason: string, body: string, close = true): void {
    this.ctx.metrics?.rejected.inc({ reason });
    if (close && this.req.httpVersionMajor === 1) {
      (this.res as ServerResponse).shouldKeepAlive = false;
      const socket = this.req.socket as Poisonable | null;
      if (socket) socket[POISONED] = true;
    }
    this.local(status, body);
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    const socket = this.req.socket as unknown as Tracked | null;
    if (socket?.[kCurrent] === this) socket[kCurrent] = undefined;
    this.log();
  }

  log(): void {
    const { ctx } = this;
    const seconds = (performance.now() - this.started) / 1000;
    const app = this.route?.app;
    ctx.metrics?.observe(app ?? '-', this.status, seconds);
    if (ctx.accessLog) {
      const req = this.req;
      ctx.accessLog.write({
        time: new Date(Date.now() - seconds * 1000).toISOString(),
        request_id: this.id,
        app,
        method: req.method ?? '-',
        host: this.host,
        path: req.url ?? '',
        protocol: req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/1.${req.httpVersionMinor}`,
        status: this.status,
        duration_ms: Math.round(seconds * 1e6) / 1000,
        bytes: this.bytes,
        client: this.client,
        upstream: this.served?.key,
        instance: this.served?.id,
        user_agent: req.headers['user-agent'],
      });
    }
  }
}

/**
 * handleUpgrade relays an HTTP/1.1 Upgrade (WebSocket) request: the same routing and tenant checks as a
 * request, then the instance's 101 response and raw bytes both ways. Anything else is answered on the
 * socket and closed.
 */
export function handleUpgrade(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
  const client = clientAddress(req.socket.remoteAddress);
  const fail = (status: number, text: string) => {
    socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
    setTimeout(() => socket.destroy(), 1000).unref();
  };
  socket.on('error', () => socket.destroy());
  if (ctx.limiter.takeRequest(client) > 0) return fail(429, 'Too Many Requests');
  const host = normalizeHost(req.headers.host ?? '');
  if (host === undefined || req.url?.charCodeAt(0) !== 47) return fail(400, 'Bad Request');
  const routes = ctx.routes();
  const route = routes.lookup(host);
  if (!route) return fail(404, 'Not Found');
  if (secure) {
    const sni = (req.socket as TLSSocket).servername;
    if (typeof sni !== 'string' || routes.lookup(sni.toLowerCase()) !== route) return fail(421, 'Misdirected Request');
  } else if (route.forceHttps) {
    return fail(403, 'Forbidden');
  }
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return fail(400, 'Bad Request');
  const picked = ctx.pools.pick(route.upstreams.healthy(), route.concurrency);
  if (picked === undefined || picked === BUSY) return fail(503, 'Service Unavailable');
  const headers: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    // undici writes Upgrade and Connection itself from the `upgrade` option (and refuses them as headers).
    if (DROP_REQUEST.has(raw[i]!.toLowerCase())) continue;
    headers.push(raw[i]!, raw[i + 1]!);
  }
  headers.push('x-forwarded-for', client, 'x-forwarded-proto', secure ? 'https' : 'http', 'x-forwarded-host', host, 'x-request-id', ctx.nextRequestId());
  picked.outstanding++;
  let released = false;
  const release = () => {
    if (!released) {
      released = true;
      picked.outstanding--;
    }
  };
  picked.pool.dispatch(
    { path: req.url ?? '/', method: 'GET', headers, upgrade: 'websocket', idempotent: false },
    {
      onConnect() {},
      onHeaders() {
        return true;
      },
      onData() {
        return true;
      },
      onComplete() {
        release();
        fail(502, 'Bad Gateway');
      },
      onError() {
        release();
        fail(502, 'Bad Gateway');
      },
      onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex) {
        let out = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
        const rh = rawHeaders ?? [];
        for (let i = 0; i < rh.length; i += 2) {
          const name = String(rh[i]);
          const lower = name.toLowerCase();
          if (lower === 'strict-transport-security' || lower === 'keep-alive' || lower === 'transfer-encoding') continue;
          out += `${name}: ${String(rh[i + 1])}\r\n`;
        }
        if (secure && route.hsts !== undefined) out += `strict-transport-security: ${route.hsts}\r\n`;
        socket.write(`${out}\r\n`);
        if (head.length > 0) upstream.write(head);
        upstream.on('error', () => socket.destroy());
        socket.on('close', () => {
          upstream.destroy();
          release();
        });
        upstream.on('close', () => socket.destroy());
        upstream.pipe(socket);
        socket.pipe(upstream);
        ctx.metrics?.observe(route.app, 101, 0);
      },
    } as Dispatcher.DispatchHandler,
  );
}

import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import type { ClientLimiter } from './limits.ts';
import type { EdgeMetrics } from './metrics.ts';
import { clientAddress } from './proxy.ts';
import { listenError } from './listen-error.ts';
import type { TcpRoute, Upstream } from './routes.ts';

/** Listen is a host and port to bind. */
export interface Listen {
  host: string;
  port: number;
}

export interface TcpServicesOptions {
  /** bind says where a public service port listens (tests map ports to ephemeral ones). */
  bind(port: number): Listen;
  /** tlsOptions are the TLS listener settings (policy, SNICallback, default certificate). */
  tlsOptions(): TlsOptions;
  limiter: ClientLimiter;
  metrics: EdgeMetrics | undefined;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  connectTimeoutMs: number;
  reusePort: boolean;
  onError(message: string, err: unknown): void;
}

interface Listener {
  server: Server;
  /** route is read per connection, so a table swap updates an open listener in place. */
  route: TcpRoute;
  sockets: Set<Socket>;
}

/**
 * TcpServices runs the listeners of `[[services]]` ports: one per public port, opened and closed as
 * route tables are swapped in. Connections go to the instance with the fewest open connections; with
 * `tls` the edge terminates TLS first (certificate by SNI), otherwise bytes pass through untouched.
 */
export class TcpServices {
  readonly #opts: TcpServicesOptions;
  readonly #listeners = new Map<number, Listener>();
  readonly #open = new Map<string, number>();

  constructor(options: TcpServicesOptions) {
    this.#opts = options;
  }

  /** sync opens, updates and closes listeners to match the routes; a port that fails to bind is reported, not fatal. */
  async sync(routes: readonly TcpRoute[]): Promise<void> {
    const wanted = new Map(routes.map((r) => [r.port, r]));
    const closing: Promise<void>[] = [];
    for (const [port, l] of this.#listeners) {
      const next = wanted.get(port);
      if (next && next.tls === l.route.tls) {
        l.route = next;
        wanted.delete(port);
      } else {
        this.#listeners.delete(port);
        closing.push(this.#close(l, 0));
      }
    }
    await Promise.all(closing);
    const opening: Promise<void>[] = [];
    for (const [port, route] of wanted) opening.push(this.#listen(port, route));
    await Promise.all(opening);
  }

  /** address is where a public port is bound (tests use it to find ephemeral ports). */
  address(port: number): AddressInfo | undefined {
    const a = this.#listeners.get(port)?.server.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  async close(graceMs: number): Promise<void> {
    const all = [...this.#listeners.values()];
    this.#listeners.clear();
    await Promise.all(all.map((l) => this.#close(l, graceMs)));
  }

  async #listen(port: number, route: TcpRoute): Promise<void> {
    const o = this.#opts;
    const sockets = new Set<Socket>();
    const listener: Listener = { server: undefined as unknown as Server, route, sockets };
    const server: Server = route.tls
      ? new TlsServer({ ...o.tlsOptions(), handshakeTimeout: o.handshakeTimeoutMs }, (s: TLSSocket) => this.#forward(listener, s))
      : createServer({ noDelay: true }, (s) => this.#forward(listener, s));
    listener.server = server;
    server.prependListener('connection', (s: Socket) => {
      const ip = clientAddress(s.remoteAddress);
      if (!o.limiter.openConnection(ip)) {
        o.metrics?.rejected.inc({ reason: 'connections_per_ip' });
        s.destroy();
        return;
      }
      sockets.add(s);
      o.metrics?.connections.inc({ listener: 'tcp' });
      s.once('close', () => {
        sockets.delete(s);
        o.limiter.closeConnection(ip);
        o.metrics?.connections.dec({ listener: 'tcp' });
      });
      s.setTimeout(o.idleTimeoutMs, () => s.destroy());
      s.on('error', () => {});
    });
    if (route.tls) server.on('tlsClientError', () => o.metrics?.handshakes.inc({ result: 'failed' }));
    const bind = o.bind(port);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e: NodeJS.ErrnoException) => reject(listenError(bind, e)));
        server.listen({ host: bind.host, port: bind.port, exclusive: o.reusePort, reusePort: o.reusePort }, () => {
          server.removeAllListeners('error');
          resolve();
        });
      });
      this.#listeners.set(port, listener);
    } catch (e) {
      o.onError(`cannot listen on TCP service port ${port} of app ${route.app}`, e);
    }
  }

  #forward(listener: Listener, client: Socket): void {
    const route = listener.route;
    const list = route.upstreams.healthy();
    const upstream = this.#pick(list);
    if (!upstream) {
      client.destroy();
      return;
    }
    const key = `${upstream.host}:${upstream.port}`;
    this.#open.set(key, (this.#open.get(key) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = (this.#open.get(key) ?? 1) - 1;
      if (n <= 0) this.#open.delete(key);
      else this.#open.set(key, n);
    };
    const up = connect({ host: upstream.host, port: upstream.port, noDelay: true, timeout: this.#opts.connectTimeoutMs });
    up.once('connect', () => up.setTimeout(this.#opts.idleTimeoutMs));
    up.on('timeout', () => up.destroy());
    up.on('error', () => {
      this.#opts.metrics?.upstreamErrors.inc({ app: route.app, kind: 'connect' });
      client.destroy();
    });
    up.on('close', () => {
      release();
      client.destroy();
    });
    client.on('close', () => up.destroy());
    if (route.proxyProtocol) up.write(proxyV1(client));
    client.pipe(up);
    up.pipe(client);
  }

  /** pick is least open connections, ties to the first (the source's order). */
  #pick(list: readonly Upstream[]): Upstream | undefined {
    let best: Upstream | undefined;
    let bestN = Infinity;
    for (const u of list) {
      const n = this.#open.get(`${u.host}:${u.port}`) ?? 0;
      if (n < bestN) {
        best = u;
        bestN = n;
      }
    }
    return best;
  }

  async #close(l: Listener, graceMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const s of l.sockets) s.destroy();
      }, graceMs);
      l.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      if (graceMs === 0) for (const s of l.sockets) s.destroy();
    });
  }
}

/** proxyV1 is the PROXY protocol v1 header (haproxy's proxy-protocol.txt §2.1) for a client connection. */
export function proxyV1(s: Socket): string {
  const src = clientAddress(s.remoteAddress);
  const dst = clientAddress(s.localAddress);
  const family = src.includes(':') || dst.includes(':') ? 'TCP6' : 'TCP4';
  if (!s.remotePort || !s.localPort) return 'PROXY UNKNOWN\r\n';
  return `PROXY ${family} ${src} ${dst} ${s.remotePort} ${s.localPort}\r\n`;
}

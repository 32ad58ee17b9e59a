import { Pool } from 'undici';
import type { EdgeLimits } from './limits.ts';
import type { ConcurrencyLimits, RouteSource, Upstream } from './routes.ts';

/**
 * PoolState is the edge's view of one instance: its keep-alive connection pool and the number of
 * requests in flight to it (the least-outstanding-requests balancer's input).
 */
export interface PoolState {
  readonly key: string;
  readonly pool: Pool;
  outstanding: number;
  /** id is the instance at this address (the upstream id it was last asked for by). */
  id: string;
}

/** DRAIN_POLL_MS is how often drain looks at an instance's in-flight count. */
const DRAIN_POLL_MS = 20;

/** BUSY means every healthy instance is at its hard concurrency limit. */
export const BUSY = 'busy' as const;

/**
 * UpstreamPools owns one undici Pool per instance address, shared by every route that sends there.
 * Pools of instances that left every route are drained: closed once their last request finishes
 * (Pool.close waits for in-flight requests), by reap, which the edge runs on a timer.
 */
export class UpstreamPools {
  readonly #byKey = new Map<string, PoolState>();
  // Upstream objects live as long as their source's list; caching by identity spares a string per request.
  #byUpstream = new WeakMap<Upstream, PoolState>();
  // Which pools an instance id was sent to: drain(id) finds them after the instance left the route table.
  readonly #keysById = new Map<string, Set<string>>();
  readonly #options: Pool.Options;
  #rr = 0;
  #closed = false;

  constructor(limits: Pick<EdgeLimits, 'upstreamConnections' | 'upstreamKeepAliveMs' | 'upstreamHeadersTimeoutMs' | 'upstreamBodyTimeoutMs' | 'upstreamConnectTimeoutMs'>) {
    this.#options = {
      connections: limits.upstreamConnections,
      pipelining: 1,
      keepAliveTimeout: limits.upstreamKeepAliveMs,
      keepAliveMaxTimeout: Math.max(limits.upstreamKeepAliveMs, 60_000),
      headersTimeout: limits.upstreamHeadersTimeoutMs,
      bodyTimeout: limits.upstreamBodyTimeoutMs,
      connect: { timeout: limits.upstreamConnectTimeoutMs },
    };
  }

  /** state returns the pool for an instance, creating it on first use. */
  state(u: Upstream): PoolState {
    let s = this.#byUpstream.get(u);
    if (s && !s.pool.closed && !s.pool.destroyed) return s;
    const key = u.host.includes(':') ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`;
    s = this.#byKey.get(key);
    if (!s || s.pool.closed || s.pool.destroyed) {
      if (this.#closed) throw new Error('upstream pools are closed');
      s = { key, pool: new Pool(`http://${key}`, this.#options), outstanding: 0, id: u.id };
      this.#byKey.set(key, s);
    }
    s.id = u.id;
    this.#byUpstream.set(u, s);
    let keys = this.#keysById.get(u.id);
    if (!keys) this.#keysById.set(u.id, (keys = new Set()));
    keys.add(key);
    return s;
  }

  /** inFlight is the number of requests in flight to an instance (by its upstream id), across its pools. */
  inFlight(id: string): number {
    let n = 0;
    for (const key of this.#keysById.get(id) ?? []) n += this.#byKey.get(key)?.outstanding ?? 0;
    return n;
  }

  /**
   * drain waits until no request is in flight to the instance `id` (at most timeoutMs), then closes its
   * pools: their idle keep-alive connections are never reused, and a request that still reaches for the
   * address (a retry holding an older route table) opens a new connection. Call it after the instance
   * left the route table, or new requests keep arriving. It resolves with what was still in flight.
   */
  async drain(id: string, timeoutMs: number): Promise<{ inFlight: number }> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight(id) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    const left = this.inFlight(id);
    for (const key of this.#keysById.get(id) ?? []) {
      const s = this.#byKey.get(key);
      if (!s) continue;
      this.#byKey.delete(key);
      // close, not destroy: what is still in flight (a timeout) ends with the process, not here.
      void s.pool.close().catch(() => {});
    }
    this.#keysById.delete(id);
    return { inFlight: left };
  }

  /**
   * pick chooses the instance with the fewest requests in flight, preferring instances under the soft
   * limit and never one at the hard limit. Ties rotate so equal instances share the load. `exclude` is
   * an instance that just failed (a retry goes elsewhere when there is an elsewhere).
   */
  pick(list: readonly Upstream[], limits: ConcurrencyLimits, exclude?: PoolState): PoolState | typeof BUSY | undefined {
    const n = list.length;
    if (n === 0) return undefined;
    if (n === 1 && limits.softLimit === undefined && limits.hardLimit === undefined) {
      const only = this.state(list[0]!);
      return only === exclude ? undefined : only;
    }
    const soft = limits.softLimit ?? Infinity;
    const hard = limits.hardLimit ?? Infinity;
    const start = this.#rr++ % n;
    if (this.#rr > 1e9) this.#rr = 0;
    let best: PoolState | undefined;
    let bestSoft: PoolState | undefined;
    let atHard = 0;
    for (let i = 0; i < n; i++) {
      const s = this.state(list[(start + i) % n]!);
      if (s === exclude) continue;
      if (s.outstanding >= hard) {
        atHard++;
        continue;
      }
      if (s.outstanding < soft && (!bestSoft || s.outstanding < bestSoft.outstanding)) bestSoft = s;
      if (!best || s.outstanding < best.outstanding) best = s;
    }
    const chosen = bestSoft ?? best;
    if (chosen) return chosen;
    return atHard > 0 ? BUSY : undefined;
  }

  /**
   * reap closes the pools of instances no route lists any more and that have nothing in flight. It is
   * how removed instances are drained; closing waits for the pool's own queue too.
   */
  reap(routes: RouteSource): void {
    const live = new Set<string>();
    for (const name of routes.hostnames()) {
      const r = routes.lookup(name);
      if (!r) continue;
      for (const u of r.upstreams.healthy()) live.add(u.host.includes(':') ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`);
    }
    for (const [key, s] of this.#byKey) {
      if (live.has(key) || s.outstanding > 0) continue;
      this.#byKey.delete(key);
      void s.pool.close().catch(() => {});
    }
    for (const [id, keys] of this.#keysById) {
      for (const key of keys) if (!this.#byKey.has(key)) keys.delete(key);
      if (keys.size === 0) this.#keysById.delete(id);
    }
  }

  /** size is the number of open pools. */
  get size(): number {
    return this.#byKey.size;
  }

  /** close drains every pool: in-flight requests finish, then connections close. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#byKey.values()];
    this.#byKey.clear();
    this.#keysById.clear();
    this.#byUpstream = new WeakMap();
    await Promise.all(all.map((s) => s.pool.close().catch(() => {})));
  }

  /** destroy closes every pool at once, failing what is in flight. */
  async destroy(): Promise<void> {
    this.#closed = true;
    const all = [...this.#byKey.values()];
    this.#byKey.clear();
    this.#keysById.clear();
    await Promise.all(all.map((s) => s.pool.destroy().catch(() => {})));
  }
}

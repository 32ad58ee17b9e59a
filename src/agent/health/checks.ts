/**
 * Health checks: which checks an app's config asks for (checksFor, pure) and one probe of each kind
 * (probeHttp, probeTcp). A probe tries the instance's addresses in order (IPv4 first: an app bound to
 * 0.0.0.0 or :: accepts it) and moves to the next only when a connection cannot be made; an answer of
 * any kind is the result.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import type { AppConfig, CheckMethod } from '../../config/index.ts';

interface Timing {
  intervalMs: number;
  timeoutMs: number;
  gracePeriodMs: number;
}

export type CheckSpec =
  | ({ kind: 'http'; port: number; path: string; method: CheckMethod; headers: Record<string, string>; implicit: false } & Timing)
  | ({ kind: 'tcp'; port: number; implicit: boolean } & Timing);

/** IMPLICIT_TIMING is used for ports without checks: the `[[services.checks]]` defaults (10s, 2s, 5s). */
export const IMPLICIT_TIMING: Timing = { intervalMs: 10_000, timeoutMs: 2000, gracePeriodMs: 5000 };

/**
 * checksFor lists an app's checks: `[[http_service.checks]]` as HTTP checks on its internal port and
 * `[[services.checks]]` as TCP checks on theirs. A TCP port without checks gets an implicit TCP check
 * (healthy when it accepts connections). UDP services have none. An app with no port has no checks
 * and is healthy while it runs.
 */
export function checksFor(config: AppConfig): CheckSpec[] {
  const out: CheckSpec[] = [];
  const http = config.httpService;
  if (http) {
    if (http.checks.length === 0) out.push({ kind: 'tcp', port: http.internalPort, implicit: true, ...IMPLICIT_TIMING });
    for (const c of http.checks) {
      out.push({ kind: 'http', port: http.internalPort, path: c.path, method: c.method, headers: c.headers, implicit: false, intervalMs: c.intervalMs, timeoutMs: c.timeoutMs, gracePeriodMs: c.gracePeriodMs });
    }
  }
  for (const s of config.services) {
    if (s.protocol !== 'tcp') continue;
    if (s.checks.length === 0) {
      if (!out.some((c) => c.port === s.internalPort)) out.push({ kind: 'tcp', port: s.internalPort, implicit: true, ...IMPLICIT_TIMING });
      continue;
    }
    for (const c of s.checks) out.push({ kind: 'tcp', port: s.internalPort, implicit: false, intervalMs: c.intervalMs, timeoutMs: c.timeoutMs, gracePeriodMs: c.gracePeriodMs });
  }
  return out;
}

/** ProbeResult is one probe's outcome: `address` is the one that answered, `detail` says what happened. */
export interface ProbeResult {
  ok: boolean;
  address: string | undefined;
  detail: string;
}

/** describeCheck names a check for people: "GET /healthz on :8080", "TCP :5432". */
export function describeCheck(c: CheckSpec): string {
  return c.kind === 'http' ? `${c.method} ${c.path} on :${c.port}` : `TCP :${c.port}${c.implicit ? ' (no checks configured: the port must accept connections)' : ''}`;
}

const NO_CONNECTION = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ECONNRESET']);

/** probe runs one check against the addresses. */
export async function probe(c: CheckSpec, addresses: readonly string[]): Promise<ProbeResult> {
  if (addresses.length === 0) return { ok: false, address: undefined, detail: 'the instance has no address' };
  let last: ProbeResult = { ok: false, address: undefined, detail: 'no address answered' };
  for (const address of addresses) {
    const r = c.kind === 'http' ? await probeHttp(address, c) : await probeTcp(address, c.port, c.timeoutMs);
    if (r.ok || !r.noConnection) return { ok: r.ok, address, detail: r.detail };
    last = { ok: false, address, detail: r.detail };
  }
  return last;
}

interface Attempt {
  ok: boolean;
  detail: string;
  /** noConnection: nothing listens there; another address may do better. */
  noConnection: boolean;
}

function hostPart(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** probeHttp sends one request, no redirects followed, no connection reused; 2xx and 3xx pass. */
export function probeHttp(address: string, c: Extract<CheckSpec, { kind: 'http' }>): Promise<Attempt> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (a: Attempt) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(a);
    };
    const req = request(
      { host: address, port: c.port, method: c.method, path: c.path, headers: { 'user-agent': 'ward-health/1', host: `${hostPart(address)}:${c.port}`, ...c.headers }, agent: false },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status < 400;
        finish({ ok, detail: `${c.method} ${c.path} answered ${status}`, noConnection: false });
        req.destroy();
      },
    );
    const timer = setTimeout(() => {
      finish({ ok: false, detail: `${c.method} ${c.path} did not answer within ${c.timeoutMs} ms`, noConnection: false });
      req.destroy();
    }, c.timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, detail: `${c.method} ${c.path}: ${e.code ?? e.message}`, noConnection: NO_CONNECTION.has(e.code ?? '') }));
    req.end();
  });
}

/** probeTcp passes when a connection to the port is accepted within the timeout. */
export function probeTcp(address: string, port: number, timeoutMs: number): Promise<Attempt> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, detail: `port ${port} did not accept a connection within ${timeoutMs} ms`, noConnection: false });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: true, detail: `port ${port} accepts connections`, noConnection: false });
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: `port ${port}: ${e.code ?? e.message}`, noConnection: NO_CONNECTION.has(e.code ?? '') });
    });
  });
}

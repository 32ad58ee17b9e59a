import { ERROR_CODES, formatDuration, UserError, VERSION, type ErrorCode } from '../core/index.ts';
import type { Env } from './command.ts';
import type { SessionStore } from './session.ts';

/**
 * The CLI's HTTP client for the Ward API (docs/api.md). It decides which server to call and with which
 * credential, and turns every failure into a UserError with a hint, so commands only handle success.
 * The token goes into the Authorization header and nowhere else: not into messages, not into logs.
 */

export const DEFAULT_API_URL = 'http://127.0.0.1:4280';
const DEFAULT_TIMEOUT_MS = 30_000;

/** Credential is the bearer token a request carries, and where it came from (for hints). */
export interface Credential {
  token: string;
  source: 'env' | 'session';
  /** email is the logged-in user's, when the credential is the stored session. */
  email?: string;
}

/** Target is the server to call and the credential to call it with, or why there is none. */
export interface Target {
  apiUrl: string;
  credential: Credential | undefined;
  /** missing explains an absent credential as a UserError ready to throw. */
  missing: UserError | undefined;
}

export interface RequestOptions {
  body?: unknown;
  /** auth: false sends no credential even when one exists (signup, login). Default true. */
  auth?: boolean;
  /**
   * as sends this exact token to this server instead of the resolved target: logout revokes the stored
   * session even when WARD_API_TOKEN or WARD_API_URL point elsewhere.
   */
  as?: { apiUrl: string; token: string };
  /** timeoutMs replaces the client's timeout for this request (a deploy waits for the server's image pull). */
  timeoutMs?: number;
}

/** ApiClient calls the Ward API. Paths start with `/v1/`; build them with apiPath. */
export interface ApiClient {
  target(): Promise<Target>;
  request<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, options?: RequestOptions): Promise<T>;
  get<T>(path: string, options?: RequestOptions): Promise<T>;
  post<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T>;
  delete<T>(path: string, options?: RequestOptions): Promise<T>;
  /**
   * download GETs a path whose answer is not JSON (an audit export) and hands the body to `write` chunk
   * by chunk, so a large answer never sits in memory. Errors are mapped like request()'s; the timeout
   * covers waiting for the answer to start, not the whole transfer.
   */
  download(path: string, write: (chunk: Uint8Array) => unknown): Promise<void>;
  /**
   * upload POSTs a large body (an image archive) as a stream, never held in memory, and returns the
   * JSON answer. The timeout covers waiting for the answer once the body is sent, not the transfer.
   */
  upload<T>(path: string, body: AsyncIterable<Uint8Array>, options: { contentType: string; size?: number }): Promise<T>;
  /**
   * lines GETs a path that answers NDJSON (a log stream) and calls onLine with each parsed line until
   * the server ends the answer or signal aborts (which resolves quietly).
   */
  lines(path: string, onLine: (value: unknown) => void, signal?: AbortSignal): Promise<void>;
}

export interface ApiClientOptions {
  env: Env;
  session: SessionStore;
  fetch?: typeof globalThis.fetch;
  timeoutMs?: number;
  now?: () => number;
}

/**
 * apiPath is a template tag that percent-encodes every interpolated value as one path segment, so a
 * name like `../admin` or `a?b` can never change which endpoint is called.
 */
export function apiPath(strings: TemplateStringsArray, ...values: Array<string | number>): string {
  return strings.reduce((acc, s, i) => acc + s + (i < values.length ? encodeURIComponent(String(values[i])) : ''), '');
}

/** normalizeApiUrl checks an API URL and drops trailing slashes; it throws a UserError naming `what`. */
export function normalizeApiUrl(raw: string, what = 'WARD_API_URL'): string {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new UserError('invalid_config', `${what} is not a URL: ${JSON.stringify(raw)}`, { hint: `use the form ${DEFAULT_API_URL}` });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new UserError('invalid_config', `${what} must be an http or https URL, not ${JSON.stringify(raw)}`, { hint: `use the form ${DEFAULT_API_URL}` });
  }
  if (u.username || u.password || u.search || u.hash) {
    throw new UserError('invalid_config', `${what} must not carry credentials, a query or a fragment`, { hint: 'put a token in WARD_API_TOKEN instead' });
  }
  return (u.origin + u.pathname).replace(/\/+$/, '');
}

/** createApiClient makes the client one CLI invocation uses. */
export function createApiClient(opts: ApiClientOptions): ApiClient {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const now = opts.now ?? Date.now;

  async function target(): Promise<Target> {
    const envUrl = opts.env.WARD_API_URL?.trim() || undefined;
    const envToken = opts.env.WARD_API_TOKEN?.trim() || undefined;
    const apiUrl = envUrl ? normalizeApiUrl(envUrl) : undefined;
    if (envToken) {
      return { apiUrl: apiUrl ?? DEFAULT_API_URL, credential: { token: envToken, source: 'env' }, missing: undefined };
    }
    const session = await opts.session.read();
    if (!session) {
      return {
        apiUrl: apiUrl ?? DEFAULT_API_URL,
        credential: undefined,
        missing: new UserError('not_logged_in', 'you are not logged in', { hint: 'run `ward auth login`, or set WARD_API_TOKEN' }),
      };
    }
    const sessionUrl = normalizeApiUrl(session.api_url, `the api_url in ${opts.session.path}`);
    const effective = apiUrl ?? sessionUrl;
    // A session token belongs to the server that issued it; sending it to another would hand it over.
    if (effective !== sessionUrl) {
      return {
        apiUrl: effective,
        credential: undefined,
        missing: new UserError('not_logged_in', `you are logged in to ${sessionUrl}, not to ${effective}`, {
          hint: 'run `ward auth login` to log in there, or unset WARD_API_URL',
        }),
      };
    }
    const expires = Date.parse(session.expires_at);
    if (Number.isFinite(expires) && expires <= now()) {
      return {
        apiUrl: effective,
        credential: undefined,
        missing: new UserError('not_logged_in', `your session for ${session.email} has expired`, { hint: 'run `ward auth login` to log in again' }),
      };
    }
    return { apiUrl: effective, credential: { token: session.token, source: 'session', email: session.email }, missing: undefined };
  }

  async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const t: Target = options.as
      ? { apiUrl: normalizeApiUrl(options.as.apiUrl), credential: { token: options.as.token, source: 'session' }, missing: undefined }
      : await target();
    const credential = options.auth === false ? undefined : t.credential;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': `ward-cli/${VERSION} node/${process.version}` };
    if (credential) headers.authorization = `Bearer ${credential.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    let res: Response;
    let text: string;
    try {
      res = await doFetch(t.apiUrl + path, { method, headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? timeoutMs), redirect: 'error' });
      text = await res.text();
    } catch (e) {
      throw unreachable(t.apiUrl, e, options.timeoutMs ?? timeoutMs);
    }
    if (res.status === 204) return undefined as T;
    const parsed = parseJson(text);
    if (res.ok) {
      if (parsed === undefined) {
        throw new UserError('api_unreachable', `${t.apiUrl} answered ${method} ${path} with something that is not JSON`, {
          hint: 'check that WARD_API_URL points at a Ward API',
        });
      }
      return parsed as T;
    }
    throw apiError(res, parsed, t, credential, options.auth !== false);
  }

  async function download(path: string, write: (chunk: Uint8Array) => unknown): Promise<void> {
    const t = await target();
    const credential = t.credential;
    const headers: Record<string, string> = { 'user-agent': `ward-cli/${VERSION} node/${process.version}` };
    if (credential) headers.authorization = `Bearer ${credential.token}`;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new DOMException('timed out', 'TimeoutError')), timeoutMs);
    let res: Response;
    try {
      res = await doFetch(t.apiUrl + path, { method: 'GET', headers, signal: abort.signal, redirect: 'error' });
    } catch (e) {
      throw unreachable(t.apiUrl, e, timeoutMs);
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) throw apiError(res, parseJson(await res.text().catch(() => '')), t, credential, true);
    if (!res.body) return;
    const reader = res.body.getReader();
    for (;;) {
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (e) {
        // The server or the network broke off mid-answer: what arrived is incomplete and must not pass for whole.
        throw new UserError('api_unreachable', `the answer from ${t.apiUrl} broke off before its end (${(e as Error)?.message ?? e})`, {
          hint: 'try again; a partial download is not a complete export',
          cause: e,
        });
      }
      if (next.done) return;
      try {
        await write(next.value);
      } catch (e) {
        await reader.cancel().catch(() => {});
        throw e;
      }
    }
  }

  async function upload<T>(path: string, body: AsyncIterable<Uint8Array>, options: { contentType: string; size?: number }): Promise<T> {
    const t = await target();
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': `ward-cli/${VERSION} node/${process.version}`, 'content-type': options.contentType };
    if (t.credential) headers.authorization = `Bearer ${t.credential.token}`;
    if (options.size !== undefined) headers['content-length'] = String(options.size);
    let res: Response;
    let text: string;
    try {
      res = await doFetch(t.apiUrl + path, { method: 'POST', headers, body: body as unknown as ReadableStream, duplex: 'half', redirect: 'error' } as RequestInit);
      text = await res.text();
    } catch (e) {
      throw unreachable(t.apiUrl, e, timeoutMs);
    }
    const parsed = parseJson(text);
    if (res.ok && parsed !== undefined) return parsed as T;
    throw apiError(res, parsed, t, t.credential, true);
  }

  async function lines(path: string, onLine: (value: unknown) => void, signal?: AbortSignal): Promise<void> {
    const t = await target();
    const headers: Record<string, string> = { accept: 'application/x-ndjson', 'user-agent': `ward-cli/${VERSION} node/${process.version}` };
    if (t.credential) headers.authorization = `Bearer ${t.credential.token}`;
    let res: Response;
    try {
      res = await doFetch(t.apiUrl + path, { method: 'GET', headers, redirect: 'error', ...(signal ? { signal } : {}) });
    } catch (e) {
      if (signal?.aborted) return;
      throw unreachable(t.apiUrl, e, timeoutMs);
    }
    if (!res.ok) throw apiError(res, parseJson(await res.text().catch(() => '')), t, t.credential, true);
    if (!res.body) return;
    const decoder = new TextDecoder();
    let pending = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        pending += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.trim() !== '') onLine(JSON.parse(line));
        }
      }
    } catch (e) {
      if (signal?.aborted) return;
      throw new UserError('api_unreachable', `the stream from ${t.apiUrl} broke off (${(e as Error)?.message ?? e})`, { hint: 'run the command again', cause: e });
    }
  }

  return {
    target,
    request,
    download,
    upload,
    lines,
    get: (path, options) => request('GET', path, options),
    post: (path, body, options) => request('POST', path, { ...options, body: body ?? {} }),
    delete: (path, options) => request('DELETE', path, options),
  };
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed',
};

/** unreachable turns a fetch failure (no HTTP answer at all) into the api_unreachable UserError. */
function unreachable(apiUrl: string, e: unknown, timeoutMs: number): UserError {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  let reason: string | undefined;
  let hint = 'start it with `ward server` or set WARD_API_URL';
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') {
    reason = `no answer within ${formatDuration(timeoutMs)}`;
  } else {
    const code = err?.cause?.code;
    if (code && NETWORK_REASONS[code]) reason = NETWORK_REASONS[code];
    else if (code && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
      reason = `TLS: ${err.cause?.message ?? code}`;
      hint = "if the server uses a private CA, point NODE_EXTRA_CA_CERTS at the CA's PEM file";
    } else if (/redirect/i.test(err?.cause?.message ?? '')) {
      // Redirects are not followed: a POST turned into a GET, or a token sent on to another host, is worse than an error.
      reason = 'it answered with a redirect';
      hint = 'if it redirects to https, set WARD_API_URL to the https:// URL';
    } else if (err?.cause?.message) reason = err.cause.message;
    else if (err?.message && err.message !== 'fetch failed') reason = err.message;
  }
  return new UserError('api_unreachable', `cannot reach the Ward API at ${apiUrl}${reason ? ` (${reason})` : ''}`, { hint, cause: e });
}

interface WireError {
  code: string;
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
  request_id?: string;
}

function wireError(v: unknown): WireError | undefined {
  const e = (v as { error?: unknown } | undefined)?.error as Record<string, unknown> | undefined;
  if (typeof e !== 'object' || e === null || typeof e.code !== 'string' || typeof e.message !== 'string') return undefined;
  return {
    code: e.code,
    message: e.message,
    hint: typeof e.hint === 'string' ? e.hint : undefined,
    details: typeof e.details === 'object' && e.details !== null ? (e.details as Record<string, unknown>) : undefined,
    request_id: typeof e.request_id === 'string' ? e.request_id : undefined,
  };
}

/**
 * HTTP_CODES are the catalog's codes that mean only an HTTP status: an answer without Ward's JSON error
 * (a proxy's page) maps to one of these, never to a domain code that shares its status (backup_failed is 502).
 */
const HTTP_CODES: readonly ErrorCode[] = ['bad_request', 'unauthenticated', 'forbidden', 'not_found', 'method_not_allowed', 'conflict', 'payload_too_large', 'unsupported_media_type', 'too_many_requests', 'internal', 'unavailable'];

function codeForStatus(status: number): ErrorCode {
  const exact = HTTP_CODES.find((c) => ERROR_CODES[c].status === status);
  if (exact) return exact;
  return status >= 500 ? 'internal' : 'bad_request';
}

/** apiError maps a non-2xx answer to a UserError carrying the API's code, message and hint. */
function apiError(res: Response, parsed: unknown, t: Target, sent: Credential | undefined, wantedAuth: boolean): UserError {
  const w = wireError(parsed);
  if (res.status === 401 && !sent && wantedAuth) {
    return t.missing ?? new UserError('not_logged_in', 'you are not logged in', { hint: 'run `ward auth login`, or set WARD_API_TOKEN' });
  }
  const requestId = w?.request_id ?? res.headers.get('x-request-id') ?? undefined;
  const details: Record<string, unknown> = { ...w?.details, status: res.status };
  if (requestId) details.request_id = requestId;
  if (!w) {
    const code = codeForStatus(res.status);
    return new UserError(code, `the Ward API at ${t.apiUrl} answered HTTP ${res.status} ${res.statusText}`.trimEnd(), {
      hint: res.status >= 500 ? 'the server or a proxy in front of it failed; check its log' : 'check that WARD_API_URL points at a Ward API',
      details,
    });
  }
  // A newer server may send a code this CLI does not know; keep it in details, classify by status.
  let code: ErrorCode;
  if (w.code in ERROR_CODES) code = w.code as ErrorCode;
  else {
    code = codeForStatus(res.status);
    details.api_code = w.code;
  }
  let hint = w.hint;
  if (!hint && res.status === 401 && sent) {
    hint = sent.source === 'env' ? 'WARD_API_TOKEN was refused; check it, or unset it to use your login' : 'run `ward auth login` to log in again';
  }
  if (!hint && code === 'internal' && requestId) hint = `the server failed; its log has the details under request id ${requestId}`;
  return new UserError(code, w.message, { hint, details });
}

import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { UserError, VERSION } from '../../../core/index.ts';
import { sha256, shortDigest } from './digest.ts';
import { MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, type Descriptor, type Platform } from './manifest.ts';
import type { RegistryReference } from './reference.ts';
import { followToManifest, verifyBytes, type ImageSource, type ResolvedImage } from './source.ts';

/**
 * A client for the OCI Distribution API (v2), as registries speak it: anonymous access, the Bearer
 * token flow (a 401 with `WWW-Authenticate: Bearer realm=…` sends the client to a token server, with
 * basic credentials when it has some), plain basic auth, manifests by tag or digest, blobs with
 * redirects. It speaks node:http(s) rather than fetch so that each registry can have its own CA and
 * redirects are followed by Ward's rules (credentials never follow a redirect to another host).
 *
 * Transport policy, as Docker's: a registry on a loopback address may be plain HTTP (HTTPS is tried
 * first); any other registry must be HTTPS with a certificate that verifies (system CAs plus `caFile`),
 * unless it is listed in `insecure`, which allows plain HTTP and unverified HTTPS for that host only.
 */

/** RegistryCredentials are a user name and password (or token) for one registry. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** RegistryOptions configure every registry the client talks to. */
export interface RegistryOptions {
  /** credentials by registry host as written in references (`registry.example.com`, `localhost:5000`). */
  credentials?: Record<string, RegistryCredentials>;
  /** insecure lists registry hosts (with port when not 443) that may use plain HTTP or unverified TLS. */
  insecure?: string[];
  /** caFile is a PEM bundle trusted for registry HTTPS in addition to the system's CAs. */
  caFile?: string;
  /** timeoutMs ends a request that sends nothing for this long; default 60 s. */
  timeoutMs?: number;
}

const MAX_REDIRECTS = 5;
const MAX_TOKEN_RESPONSE = 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;

/** isLoopbackHost tells whether a registry host (with or without port) is a loopback address. */
export function isLoopbackHost(registry: string): boolean {
  const host = hostOnly(registry);
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

function hostOnly(registry: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(registry);
  if (m) return m[1]!.toLowerCase();
  return registry.replace(/:\d+$/, '').toLowerCase();
}

/** TransportPolicy says how Ward may connect to one registry host. */
export interface TransportPolicy {
  /** schemes in the order to try them. */
  schemes: ('https' | 'http')[];
  /** verifyTls requires the HTTPS certificate to verify. */
  verifyTls: boolean;
}

/** transportPolicy applies the rule above to one host (pure: tested by equality). */
export function transportPolicy(registry: string, insecure: readonly string[] = []): TransportPolicy {
  const listed = insecure.some((h) => h.toLowerCase() === registry.toLowerCase() || h.toLowerCase() === hostOnly(registry));
  if (listed) return { schemes: ['https', 'http'], verifyTls: false };
  if (isLoopbackHost(registry)) return { schemes: ['https', 'http'], verifyTls: true };
  return { schemes: ['https'], verifyTls: true };
}

/** apiHost is where a registry's API answers (Docker Hub's differs from its name). */
function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

/** parseChallenge reads a WWW-Authenticate header: its scheme and parameters (RFC 7235). */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } | undefined {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)\s*/gy;
  const rest = m[2]!;
  re.lastIndex = 0;
  while (re.lastIndex < rest.length) {
    const p = re.exec(rest);
    if (!p) break;
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

const TLS_CERT_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH/;

async function readBody(res: http.IncomingMessage, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) {
      res.destroy();
      throw new UserError('image_invalid', `${what} is larger than ${max} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

function drain(res: http.IncomingMessage): void {
  res.resume();
}

/**
 * RegistryClient talks to registries. One client keeps connections, the scheme each host speaks and
 * tokens per repository scope, so reuse it across pulls; close() ends its connections.
 */
export class RegistryClient {
  readonly #opts: RegistryOptions;
  readonly #ca: string[] | undefined;
  readonly #agents = new Map<string, http.Agent>();
  readonly #schemes = new Map<string, 'https' | 'http'>();
  readonly #auth = new Map<string, { header: string; expires: number }>();

  constructor(opts: RegistryOptions = {}) {
    this.#opts = opts;
    if (opts.caFile) {
      let pem: string;
      try {
        pem = readFileSync(opts.caFile, 'utf8');
      } catch (e) {
        throw new UserError('invalid_config', `cannot read the registry CA file ${opts.caFile}: ${(e as Error).message}`, { hint: 'point caFile at a PEM bundle' });
      }
      this.#ca = [...rootCertificates, pem];
    }
  }

  /** source returns an ImageSource for a registry reference. */
  source(ref: RegistryReference): ImageSource {
    return new RegistrySource(this, ref);
  }

  close(): void {
    for (const a of this.#agents.values()) a.destroy();
    this.#agents.clear();
  }

  #agent(scheme: 'https' | 'http', verify: boolean): http.Agent {
    const key = `${scheme}:${verify}`;
    let a = this.#agents.get(key);
    if (!a) {
      a = scheme === 'http'
        ? new http.Agent({ keepAlive: true, maxSockets: 8 })
        : new https.Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: verify, ...(this.#ca ? { ca: this.#ca } : {}) });
      this.#agents.set(key, a);
    }
    return a;
  }

  /** #get makes one GET, without following redirects. */
  #get(url: URL, headers: Record<string, string>): Promise<Response> {
    const registry = url.host;
    const policy = transportPolicy(registry, this.#opts.insecure);
    const scheme = url.protocol === 'https:' ? 'https' : 'http';
    if (!policy.schemes.includes(scheme)) {
      return Promise.reject(new UserError('registry_tls', `refusing plain HTTP to ${registry}: only loopback registries and those listed as insecure may skip TLS`, {
        hint: `serve the registry over HTTPS, or add ${registry} to the insecure registries`,
      }));
    }
    const lib = scheme === 'https' ? https : http;
    const timeout = this.#opts.timeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, { method: 'GET', headers: { 'user-agent': `ward/${VERSION}`, ...headers }, agent: this.#agent(scheme, policy.verifyTls) }, (res) => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
      });
      req.setTimeout(timeout, () => req.destroy(Object.assign(new Error(`no answer for ${timeout} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end();
    });
  }

  /** #request GETs a path of a registry, finding out once whether it speaks HTTPS or (where allowed) HTTP. */
  async #request(registry: string, path: string, headers: Record<string, string>): Promise<Response> {
    const host = apiHost(registry);
    const policy = transportPolicy(host, this.#opts.insecure);
    const known = this.#schemes.get(host);
    const schemes = known ? [known] : policy.schemes;
    let lastError: unknown;
    for (const scheme of schemes) {
      try {
        const res = await this.#get(new URL(`${scheme}://${host}${path}`), headers);
        this.#schemes.set(host, scheme);
        return res;
      } catch (e) {
        lastError = e;
        const code = String((e as NodeJS.ErrnoException).code ?? '');
        if (scheme === 'https' && TLS_CERT_ERRORS.test(code)) {
          throw new UserError('registry_tls', `the TLS certificate of ${registry} does not verify (${code})`, {
            hint: `configure the registry's CA file, or list ${registry} as an insecure registry`,
            cause: e,
          });
        }
        // Only a protocol mismatch (an HTTP server answering a TLS hello) may fall back to HTTP.
        const mismatch = code === 'EPROTO' || code === 'ECONNRESET' || code.startsWith('ERR_SSL');
        if (!mismatch) break;
      }
    }
    throw unreachable(registry, lastError);
  }

  /**
   * fetch GETs a registry path for a repository, doing the auth dance on a 401 and following redirects
   * (without credentials when they leave the registry's host). `scope` is the token scope to ask for.
   */
  async fetch(registry: string, path: string, accept: string | undefined, scope: string): Promise<Response> {
    const authKey = `${registry}|${scope}`;
    const headers = (): Record<string, string> => {
      const h: Record<string, string> = {};
      if (accept) h.accept = accept;
      const a = this.#auth.get(authKey);
      if (a && a.expires > Date.now()) h.authorization = a.header;
      return h;
    };
    let res = await this.#request(registry, path, headers());
    if (res.status === 401) {
      drain(res.body);
      const sent = headers().authorization !== undefined;
      await this.#authenticate(registry, res.headers['www-authenticate'], scope, authKey);
      res = await this.#request(registry, path, headers());
      if (res.status === 401) {
        drain(res.body);
        throw authError(registry, sent || this.#credentials(registry) !== undefined);
      }
    }
    for (let hops = 0; res.status >= 300 && res.status < 400 && res.headers.location; hops++) {
      drain(res.body);
      if (hops >= MAX_REDIRECTS) throw new UserError('registry_unavailable', `${registry} redirected more than ${MAX_REDIRECTS} times`);
      const next = new URL(res.headers.location, res.url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new UserError('registry_unavailable', `${registry} redirected to an unsupported URL scheme ${next.protocol}`);
      const h: Record<string, string> = {};
      if (accept) h.accept = accept;
      // Credentials stay with the registry: storage backends get signed URLs instead.
      if (next.host === res.url.host && next.protocol === res.url.protocol) Object.assign(h, headers());
      try {
        res = await this.#get(next, h);
      } catch (e) {
        if (e instanceof UserError) throw e;
        throw unreachable(next.host, e);
      }
    }
    return res;
  }

  #credentials(registry: string): RegistryCredentials | undefined {
    const c = this.#opts.credentials ?? {};
    return c[registry] ?? (registry === 'docker.io' ? c['index.docker.io'] ?? c['registry-1.docker.io'] : undefined);
  }

  async #authenticate(registry: string, header: string | undefined, scope: string, authKey: string): Promise<void> {
    const creds = this.#credentials(registry);
    const challenge = header ? parseChallenge(header) : undefined;
    if (challenge?.scheme === 'basic') {
      if (!creds) throw authError(registry, false);
      this.#auth.set(authKey, { header: basic(creds), expires: Infinity });
      return;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) {
      throw new UserError('registry_auth', `${registry} asked for authentication in a way Ward does not support (${header ?? 'no WWW-Authenticate header'})`, {
        hint: 'Ward supports basic auth and the Bearer token flow',
      });
    }
    let realm: URL;
    try {
      realm = new URL(challenge.params.realm);
    } catch {
      throw new UserError('registry_auth', `${registry} named an invalid token realm`);
    }
    // Credentials go to the token server only over TLS, or plain HTTP where the registry rule allows it.
    if (realm.protocol !== 'https:' && !transportPolicy(realm.host, this.#opts.insecure).schemes.includes('http')) {
      throw new UserError('registry_tls', `${registry} sends clients to a token server over plain HTTP (${realm.host})`, {
        hint: `serve the token server over HTTPS, or list ${realm.host} as insecure`,
      });
    }
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    realm.searchParams.append('scope', challenge.params.scope ?? scope);
    const h: Record<string, string> = { accept: 'application/json' };
    if (creds) h.authorization = basic(creds);
    let res: Response;
    try {
      res = await this.#get(realm, h);
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw unreachable(realm.host, e);
    }
    if (res.status === 401 || res.status === 403) {
      drain(res.body);
      throw authError(registry, creds !== undefined);
    }
    if (res.status !== 200) {
      drain(res.body);
      throw new UserError('registry_unavailable', `the token server of ${registry} answered HTTP ${res.status}`);
    }
    const body = await readBody(res.body, MAX_TOKEN_RESPONSE, 'the token response');
    let token: unknown;
    let expiresIn: unknown;
    try {
      const j = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      token = j.token ?? j.access_token;
      expiresIn = j.expires_in;
    } catch {
      throw new UserError('registry_unavailable', `the token server of ${registry} answered with something that is not JSON`);
    }
    if (typeof token !== 'string' || token === '') throw new UserError('registry_unavailable', `the token server of ${registry} sent no token`);
    // Tokens live at least 60 s by the spec; renew a little early.
    const ttl = typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn : 60;
    this.#auth.set(authKey, { header: `Bearer ${token}`, expires: Date.now() + Math.max(ttl - 10, 5) * 1000 });
  }
}

function basic(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

function authError(registry: string, hadCredentials: boolean): UserError {
  return hadCredentials
    ? new UserError('registry_auth', `${registry} refused the credentials`, { hint: `check the user name and password (or token) configured for ${registry}` })
    : new UserError('registry_auth', `${registry} requires credentials and none are configured`, { hint: `configure credentials for ${registry}` });
}

function unreachable(host: string, e: unknown): UserError {
  if (e instanceof UserError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return new UserError('registry_unavailable', `cannot reach the registry ${host}${code ? ` (${code})` : ''}: ${(e as Error | undefined)?.message ?? 'no answer'}`, {
    hint: 'check the registry address and that it runs',
    cause: e,
  });
}

async function statusError(res: Response, registry: string, what: string): Promise<UserError> {
  const body = await readBody(res.body, MAX_ERROR_BODY, 'an error answer').catch(() => Buffer.alloc(0));
  let detail = '';
  try {
    const j = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const first = j.errors?.[0];
    if (first) detail = `: ${first.code ?? ''}${first.message ? ` ${first.message}` : ''}`;
  } catch {
    // Not the registry's JSON error form: the status says enough.
  }
  if (res.status === 404) return new UserError('image_not_found', `${what} not found in ${registry}${detail}`, { hint: 'check the repository name and the tag or digest' });
  if (res.status === 403) return new UserError('registry_auth', `${registry} denied access to ${what}${detail}`, { hint: `check that the credentials for ${registry} may pull this repository` });
  return new UserError('registry_unavailable', `${registry} answered HTTP ${res.status} for ${what}${detail}`, { hint: res.status === 429 ? 'the registry is rate-limiting; retry later' : 'retry later, or check the registry' });
}

/** RegistrySource is one reference's view of a registry. */
class RegistrySource implements ImageSource {
  readonly label: string;
  readonly #client: RegistryClient;
  readonly #ref: RegistryReference;
  readonly #scope: string;

  constructor(client: RegistryClient, ref: RegistryReference) {
    this.#client = client;
    this.#ref = ref;
    this.#scope = `repository:${ref.repository}:pull`;
    this.label = `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
  }

  async #manifest(reference: string): Promise<{ bytes: Buffer; mediaType: string | undefined; digestHeader: string | undefined }> {
    const path = `/v2/${this.#ref.repository}/manifests/${reference}`;
    const res = await this.#client.fetch(this.#ref.registry, path, MANIFEST_ACCEPT, this.#scope);
    if (res.status !== 200) throw await statusError(res, this.#ref.registry, `manifest ${this.#ref.repository}:${reference}`);
    const len = Number(res.headers['content-length'] ?? 0);
    if (len > MAX_MANIFEST_SIZE) {
      drain(res.body);
      throw new UserError('image_invalid', `${this.label}: the manifest is ${len} bytes, over the ${MAX_MANIFEST_SIZE}-byte limit`);
    }
    const bytes = await readBody(res.body, MAX_MANIFEST_SIZE, `${this.label}: the manifest`);
    const dh = res.headers['docker-content-digest'];
    return { bytes, mediaType: res.headers['content-type'], digestHeader: typeof dh === 'string' ? dh : undefined };
  }

  async resolve(platform: Platform): Promise<ResolvedImage> {
    const top = await this.#manifest(this.#ref.digest ?? this.#ref.tag ?? 'latest');
    let digest: string;
    if (this.#ref.digest) {
      verifyBytes(top.bytes, { digest: this.#ref.digest }, `${this.label}: manifest`);
      digest = this.#ref.digest;
    } else {
      digest = sha256(top.bytes);
      if (top.digestHeader && top.digestHeader !== digest && top.digestHeader.startsWith('sha256:')) {
        throw new UserError('image_invalid', `${this.label}: the registry says the manifest is ${top.digestHeader} but its content is ${digest}`, {
          hint: 'the registry or something between it and Ward altered the manifest',
        });
      }
    }
    const start: { bytes: Buffer; digest: string; mediaType?: string } = { bytes: top.bytes, digest };
    if (top.mediaType) start.mediaType = top.mediaType;
    return followToManifest(start, async (d) => {
      const got = await this.#manifest(d.digest);
      return got.mediaType ? { bytes: got.bytes, mediaType: got.mediaType } : { bytes: got.bytes };
    }, platform, this.label);
  }

  async blob(d: Descriptor): Promise<AsyncIterable<Buffer>> {
    const res = await this.#client.fetch(this.#ref.registry, `/v2/${this.#ref.repository}/blobs/${d.digest}`, undefined, this.#scope);
    if (res.status !== 200) {
      const e = await statusError(res, this.#ref.registry, `blob ${shortDigest(d.digest)}`);
      if (e.code === 'image_not_found') throw new UserError('image_invalid', `${this.label}: the registry has no blob ${shortDigest(d.digest)}, which the manifest names`, { hint: 'the image in the registry is incomplete; push it again' });
      throw e;
    }
    return res.body as AsyncIterable<Buffer>;
  }

  async close(): Promise<void> {}
}

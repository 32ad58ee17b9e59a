import { createHash, X509Certificate } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BasicOCSPResponse, CertID, id_pkix_ocsp_basic, OCSPRequest, OCSPResponse, OCSPResponseStatus, Request, TBSRequest } from '@peculiar/asn1-ocsp';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate } from '@peculiar/asn1-x509';
import type { CertificateMaterial } from './source.ts';

/** OcspLog is where the stapler reports; a pino logger fits. */
export interface OcspLog {
  warn(obj: object, msg: string): void;
}

export interface OcspStaplerOptions {
  /** post sends a request to the responder and returns its status and body; default postOcsp. */
  post?: (url: string, body: Buffer, timeoutMs: number) => Promise<{ status: number; body: Buffer }>;
  now?: () => number;
  log?: OcspLog;
  /** timeoutMs bounds one request to a responder; default 10 s. */
  timeoutMs?: number;
  /** retryMinMs and retryMaxMs bound the wait after failures (doubling); default 1 min and 1 h. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

const SHA1 = '1.3.14.3.2.26';
const MAX_RESPONSE_BYTES = 64 * 1024;
const HOUR = 3_600_000;

interface Target {
  url: string;
  request: Buffer;
  serial: Buffer;
  issuerKeyHash: Buffer;
}

interface State {
  /** target is undefined when the certificate names no responder or the chain has no issuer. */
  target: Target | undefined;
  response: Buffer | undefined;
  /** staleAt is the response's nextUpdate: past it the response is not stapled. */
  staleAt: number;
  refreshAt: number;
  retryAt: number;
  failures: number;
  /** fetching is the fetch in flight, shared by whoever asks meanwhile. */
  fetching: Promise<void> | undefined;
}

/**
 * OcspStapler keeps an OCSP response for each served certificate whose leaf names a responder
 * (Authority Information Access) and whose chain carries its issuer, and hands it to the handshake
 * (the server's 'OCSPRequest' event) from memory. It never makes a handshake wait: without a fresh
 * response the handshake goes on with no staple, and a fetch starts in the background. A response is
 * refreshed halfway between its thisUpdate and nextUpdate, is never stapled past nextUpdate, and is
 * only kept when the responder says "good" for this very certificate; failures back off (doubling, from
 * a minute to an hour). Each process (cluster worker) keeps its own.
 */
export class OcspStapler {
  readonly #o: OcspStaplerOptions;
  readonly #now: () => number;
  readonly #state = new WeakMap<CertificateMaterial, State>();
  // The handshake hands us the leaf in DER; this finds its material without keeping it alive.
  readonly #byLeaf = new Map<string, WeakRef<CertificateMaterial>>();
  readonly #gone = new FinalizationRegistry<string>((key) => {
    if (this.#byLeaf.get(key)?.deref() === undefined) this.#byLeaf.delete(key);
  });

  constructor(options: OcspStaplerOptions = {}) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * warm registers a certificate as served (the edge calls it when it builds the certificate's TLS
   * context) and starts fetching its response if it has a responder.
   */
  warm(m: CertificateMaterial): void {
    this.#stateOf(m);
  }

  /**
   * forLeaf answers a handshake's status request: the fresh response for the leaf (DER, as Node's
   * 'OCSPRequest' event gives it), or undefined. It starts a refresh when one is due.
   */
  forLeaf(leafDer: Buffer): Buffer | undefined {
    const m = this.#byLeaf.get(leafDer.toString('base64'))?.deref();
    return m ? this.staple(m) : undefined;
  }

  /** staple is the fresh response for a served certificate, or undefined; it starts a refresh when due. */
  staple(m: CertificateMaterial): Buffer | undefined {
    const s = this.#stateOf(m);
    if (!s.target) return undefined;
    const now = this.#now();
    if (!s.fetching && now >= s.refreshAt && now >= s.retryAt) void this.#fetch(m, s);
    return s.response && now < s.staleAt ? s.response : undefined;
  }

  /** refresh fetches a certificate's response now and settles when it is stored (or failed); for tests and warm-up. */
  async refresh(m: CertificateMaterial): Promise<boolean> {
    const s = this.#stateOf(m);
    if (!s.target) return false;
    await this.#fetch(m, s);
    return s.response !== undefined && this.#now() < s.staleAt;
  }

  #stateOf(m: CertificateMaterial): State {
    let s = this.#state.get(m);
    if (s) return s;
    let target: Target | undefined;
    try {
      target = ocspTarget(m.cert);
    } catch (e) {
      this.#o.log?.warn({ error: (e as Error).message }, 'OCSP: the certificate chain could not be read; no stapling');
    }
    s = { target, response: undefined, staleAt: 0, refreshAt: 0, retryAt: 0, failures: 0, fetching: undefined };
    this.#state.set(m, s);
    if (target) {
      const key = new X509Certificate(m.cert).raw.toString('base64');
      this.#byLeaf.set(key, new WeakRef(m));
      this.#gone.register(m, key);
      void this.#fetch(m, s);
    }
    return s;
  }

  #fetch(m: CertificateMaterial, s: State): Promise<void> {
    s.fetching ??= this.#fetchOnce(m, s).finally(() => {
      s.fetching = undefined;
    });
    return s.fetching;
  }

  async #fetchOnce(m: CertificateMaterial, s: State): Promise<void> {
    const t = s.target;
    if (!t) return;
    try {
      const res = await (this.#o.post ?? postOcsp)(t.url, t.request, this.#o.timeoutMs ?? 10_000);
      if (res.status !== 200) throw new Error(`the responder answered HTTP ${res.status}`);
      const body = res.body;
      const facts = readOcspResponse(body, t);
      const now = this.#now();
      if (facts.nextUpdate <= now) throw new Error(`the response is already stale (nextUpdate ${new Date(facts.nextUpdate).toISOString()})`);
      s.response = body;
      s.staleAt = facts.nextUpdate;
      // Halfway through the validity window: a failed refresh still leaves half of it for retries.
      s.refreshAt = Math.max(now + 60_000, facts.thisUpdate + (facts.nextUpdate - facts.thisUpdate) / 2);
      s.failures = 0;
      s.retryAt = 0;
      m.ocspResponse = body;
    } catch (e) {
      s.failures++;
      const min = this.#o.retryMinMs ?? 60_000;
      s.retryAt = this.#now() + Math.min(this.#o.retryMaxMs ?? HOUR, min * 2 ** (s.failures - 1));
      this.#o.log?.warn({ url: t.url, failures: s.failures, error: (e as Error).message }, 'OCSP response not fetched; handshakes go on without a staple');
    }
  }
}

/**
 * postOcsp POSTs an OCSP request (RFC 6960 appendix A.1) on a connection of its own, closed after the
 * answer: a status fetch happens every few hours per certificate, and some responders (openssl's)
 * serve one connection at a time. The answer is capped at 64 KiB and the whole exchange at timeoutMs.
 */
export function postOcsp(url: string, body: Buffer, timeoutMs: number): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(u, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response', 'content-length': body.length, connection: 'close' },
      timeout: timeoutMs,
    });
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => {
      clearTimeout(deadline);
      reject(e);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`the response is larger than ${MAX_RESPONSE_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
      });
      res.on('error', () => {});
    });
    req.end(body);
  });
}

/**
 * ocspTarget reads what a status request for a chain's leaf needs: the responder URL (from the leaf's
 * AIA) and a DER OCSPRequest (RFC 6960 §4.1) for its CertID (SHA-1, as every responder accepts), with
 * the issuer found among the chain's other certificates. undefined: no responder, or no issuer.
 */
export function ocspTarget(chainPem: string): Target | undefined {
  const pems = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length < 2) return undefined;
  const leaf = new X509Certificate(pems[0]!);
  const url = /OCSP - URI:(\S+)/.exec(leaf.infoAccess ?? '')?.[1];
  if (!url || !/^https?:\/\//.test(url)) return undefined;
  const issuer = pems.slice(1).map((p) => new X509Certificate(p)).find((c) => leaf.checkIssued(c));
  if (!issuer) return undefined;
  const leafAsn = AsnConvert.parse(leaf.raw, Certificate);
  const issuerAsn = AsnConvert.parse(issuer.raw, Certificate);
  const sha1 = (b: ArrayBuffer | Uint8Array) => createHash('sha1').update(new Uint8Array(b)).digest();
  const issuerKeyHash = sha1(issuerAsn.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey);
  const serial = Buffer.from(leafAsn.tbsCertificate.serialNumber);
  const certId = new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: SHA1, parameters: null }),
    issuerNameHash: new OctetString(sha1(AsnConvert.serialize(issuerAsn.tbsCertificate.subject))),
    issuerKeyHash: new OctetString(issuerKeyHash),
    serialNumber: leafAsn.tbsCertificate.serialNumber,
  });
  const request = new OCSPRequest({ tbsRequest: new TBSRequest({ requestList: [new Request({ reqCert: certId })] }) });
  return { url, request: Buffer.from(AsnConvert.serialize(request)), serial, issuerKeyHash };
}

/**
 * readOcspResponse checks a DER OCSP response is one worth stapling for the target: status successful,
 * a basic response, a SingleResponse for this serial and issuer saying "good", with a nextUpdate (one
 * without would be stapled forever). It returns the validity window; anything else throws. The
 * responder's signature is the client's to check, as with any staple.
 */
export function readOcspResponse(der: Buffer, t: Target): { thisUpdate: number; nextUpdate: number } {
  const r = AsnConvert.parse(der, OCSPResponse);
  if (r.responseStatus !== OCSPResponseStatus.successful) throw new Error(`the responder said ${OCSPResponseStatus[r.responseStatus] ?? r.responseStatus}`);
  if (!r.responseBytes || r.responseBytes.responseType !== id_pkix_ocsp_basic) throw new Error('not a basic OCSP response');
  const basic = AsnConvert.parse(r.responseBytes.response, BasicOCSPResponse);
  const single = basic.tbsResponseData.responses.find(
    (s) => Buffer.from(s.certID.serialNumber).equals(t.serial) && (s.certID.hashAlgorithm.algorithm !== SHA1 || Buffer.from(s.certID.issuerKeyHash.buffer).equals(t.issuerKeyHash)),
  );
  if (!single) throw new Error('the response is not about this certificate');
  if (single.certStatus.good === undefined) throw new Error(single.certStatus.revoked ? 'the responder says the certificate is REVOKED' : 'the responder does not know the certificate');
  if (!single.nextUpdate) throw new Error('the response has no nextUpdate');
  return { thisUpdate: single.thisUpdate.getTime(), nextUpdate: single.nextUpdate.getTime() };
}

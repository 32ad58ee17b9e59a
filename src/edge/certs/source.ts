import { createPrivateKey, X509Certificate } from 'node:crypto';
import { UserError } from '../../core/index.ts';
import { certificateFacts } from './facts.ts';
import type { CertStore, StoredCertificate } from './store.ts';

/**
 * CertificateMaterial is a certificate chain and key in PEM, ready to serve. `ocspResponse`, when set,
 * is a DER OCSP response for the leaf that the edge staples.
 */
export interface CertificateMaterial {
  readonly key: string;
  readonly cert: string;
  readonly notAfter: Date;
  ocspResponse?: Buffer | undefined;
}

/**
 * CertificateSource picks the certificate for a TLS handshake by SNI. getCertificate is called during
 * every handshake, so it must answer from memory, synchronously; `serverName` is lower-case. It returns
 * the same object until the certificate changes: the edge builds one TLS context per object and caches
 * it by identity. undefined means "no certificate for this name": the handshake then gets the edge's
 * default certificate, which names no customer.
 */
export interface CertificateSource {
  getCertificate(serverName: string): CertificateMaterial | undefined;
}

/** CertificateEntry is what serving a certificate needs: a StoredCertificate has it, and so does an IPC copy. */
export interface CertificateEntry {
  name: string;
  names: readonly string[];
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

/**
 * CertificateCache is the CertificateSource the edge uses: every certificate of a CertStore, in memory,
 * indexed by each name it covers (a `*.example.com` certificate answers for one label under it).
 * The CertManager puts each new certificate here as soon as it is stored; other processes call load.
 */
export class CertificateCache implements CertificateSource {
  #byName = new Map<string, CertificateMaterial>();
  readonly #byCert = new Map<string, { names: string[]; material: CertificateMaterial }>();

  getCertificate(serverName: string): CertificateMaterial | undefined {
    const exact = this.#byName.get(serverName);
    if (exact) return exact;
    const dot = serverName.indexOf('.');
    return dot > 0 ? this.#byName.get(`*${serverName.slice(dot)}`) : undefined;
  }

  readonly #listeners = new Set<() => void>();

  /** set serves a certificate for each of its names, replacing whatever served them before. */
  set(cert: CertificateEntry & Partial<Omit<StoredCertificate, 'names'>>): void {
    const material: CertificateMaterial = { key: cert.keyPem, cert: cert.certPem, notAfter: cert.notAfter };
    this.delete(cert.name);
    this.#byCert.set(cert.name, { names: [...cert.names], material });
    this.#rebuild();
  }

  delete(name: string): void {
    if (this.#byCert.delete(name)) this.#rebuild();
  }

  /** managed is the material of the certificate stored under a managed name (not an SNI lookup). */
  managed(name: string): CertificateMaterial | undefined {
    return this.#byCert.get(name)?.material;
  }

  /** entries lists the served certificates by managed name (for metrics and OCSP refresh). */
  entries(): Array<{ name: string; names: string[]; material: CertificateMaterial }> {
    return [...this.#byCert].map(([name, e]) => ({ name, ...e }));
  }

  /** load replaces the cache's contents with every certificate in a store. */
  async load(store: CertStore): Promise<void> {
    this.#byCert.clear();
    for (const name of await store.listCertificates()) {
      const cert = await store.getCertificate(name);
      if (cert) this.#byCert.set(cert.name, { names: cert.names, material: { key: cert.keyPem, cert: cert.certPem, notAfter: cert.notAfter } });
    }
    this.#rebuild();
  }

  #rebuild(): void {
    // A new map swapped in whole: a handshake never sees a half-updated index. Expired certificates are
    // not served: a client gets the default certificate and a clear failure, not an expired one.
    const next = new Map<string, CertificateMaterial>();
    const now = Date.now();
    // Newest first, so when two certificates cover a name the one that lasts longest wins.
    const all = [...this.#byCert.values()].sort((a, b) => b.material.notAfter.getTime() - a.material.notAfter.getTime());
    for (const { names, material } of all) {
      if (material.notAfter.getTime() <= now) continue;
      for (const n of names) if (!next.has(n)) next.set(n, material);
    }
    this.#byName = next;
    for (const l of this.#listeners) l();
  }

  /** subscribe is told after every change (an edge primary passes the set on to its workers). */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/**
 * storedFromPem makes a StoredCertificate from PEM an operator uploads (`ward certs add --cert --key`).
 * It refuses (certificate_invalid) what would fail only later, in a client's handshake: a chain that does
 * not parse, a leaf without DNS names, an expired leaf, or a key that is not the leaf's.
 */
export function storedFromPem(certPem: string, keyPem: string, source: 'acme' | 'manual', now: Date = new Date()): StoredCertificate {
  const invalid = (message: string, cause?: unknown) =>
    new UserError('certificate_invalid', message, { hint: 'upload the full chain in PEM (leaf first) and its unencrypted PEM private key', cause });
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
  } catch (e) {
    throw invalid('the certificate is not a PEM X.509 certificate', e);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw invalid('the key is not an unencrypted PEM private key', e);
  }
  if (!leaf.checkPrivateKey(key)) throw invalid('the key does not belong to the certificate');
  const facts = certificateFacts(certPem);
  if (facts.names.length === 0) throw invalid('the certificate names no DNS name (subjectAltName)');
  if (facts.notAfter <= now) throw invalid(`the certificate expired on ${facts.notAfter.toISOString()}`);
  return { name: facts.names[0]!, names: facts.names, certPem, keyPem, notBefore: facts.notBefore, notAfter: facts.notAfter, source };
}

import { randomBytes } from 'node:crypto';
import type { EdgeCertRepo, EdgeCertStatusRecord } from '../../store/index.ts';
import type { Sealer } from './sealer.ts';
import type { AcmeAccount, CertificateStatus, CertStore, IssuanceLock, LockHandle, StoredCertificate } from './store.ts';

/**
 * StoreCertStore is the CertStore `ward server` uses: certificates, status and ACME accounts in the
 * control plane's Store (migration 11), so every edge on one database serves and renews the same
 * certificates. Keys are sealed here, before they reach the repo (the same contexts as FileCertStore:
 * `cert-key:<name>`, `acme-account:<directory>`), so the database holds no plaintext key.
 */
export class StoreCertStore implements CertStore {
  readonly #repo: EdgeCertRepo;
  readonly #sealer: Sealer;
  readonly #now: () => number;

  constructor(repo: EdgeCertRepo, sealer: Sealer, now: () => number = Date.now) {
    this.#repo = repo;
    this.#sealer = sealer;
    this.#now = now;
  }

  async getCertificate(name: string): Promise<StoredCertificate | undefined> {
    const r = await this.#repo.getCertificate(name);
    if (!r) return undefined;
    const key = await this.#sealer.open(r.keySealed, `cert-key:${r.name}`);
    return { name: r.name, names: r.names, certPem: r.certPem, keyPem: key.toString('utf8'), notBefore: new Date(r.notBefore), notAfter: new Date(r.notAfter), source: r.source };
  }

  async putCertificate(cert: StoredCertificate): Promise<void> {
    await this.#repo.putCertificate({
      name: cert.name,
      names: cert.names,
      certPem: cert.certPem,
      keySealed: await this.#sealer.seal(Buffer.from(cert.keyPem, 'utf8'), `cert-key:${cert.name}`),
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      source: cert.source,
      updatedAt: new Date(this.#now()).toISOString(),
    });
  }

  async deleteCertificate(name: string): Promise<void> {
    await this.#repo.deleteCertificate(name);
  }

  listCertificates(): Promise<string[]> {
    return this.#repo.listCertificateNames();
  }

  async getStatus(name: string): Promise<CertificateStatus | undefined> {
    const r = await this.#repo.getStatus(name);
    return r && fromRecord(r);
  }

  async putStatus(status: CertificateStatus): Promise<void> {
    await this.#repo.putStatus(toRecord(status));
  }

  /** addStatus records a new managed name unless another edge already did (one statement, no race). */
  async addStatus(status: CertificateStatus): Promise<boolean> {
    return this.#repo.addStatus(toRecord(status));
  }

  async listStatus(): Promise<CertificateStatus[]> {
    return (await this.#repo.listStatus()).map(fromRecord);
  }

  async getAccount(directoryUrl: string): Promise<AcmeAccount | undefined> {
    const r = await this.#repo.getAccount(directoryUrl);
    if (!r) return undefined;
    const key = await this.#sealer.open(r.keySealed, `acme-account:${r.directoryUrl}`);
    return { directoryUrl: r.directoryUrl, email: r.email ?? undefined, url: r.url ?? undefined, keyPem: key.toString('utf8') };
  }

  async putAccount(account: AcmeAccount): Promise<void> {
    await this.#repo.putAccount({
      directoryUrl: account.directoryUrl,
      email: account.email ?? null,
      url: account.url ?? null,
      keySealed: await this.#sealer.seal(Buffer.from(account.keyPem, 'utf8'), `acme-account:${account.directoryUrl}`),
    });
  }
}

function fromRecord(r: EdgeCertStatusRecord): CertificateStatus {
  return {
    name: r.name,
    state: r.state,
    notAfter: r.notAfter ?? undefined,
    renewAt: r.renewAt ?? undefined,
    lastAttemptAt: r.lastAttemptAt ?? undefined,
    lastError: r.lastError ?? undefined,
    failures: r.failures,
    nextAttemptAt: r.nextAttemptAt ?? undefined,
  };
}

function toRecord(s: CertificateStatus): EdgeCertStatusRecord {
  return {
    name: s.name,
    state: s.state,
    notAfter: s.notAfter ?? null,
    renewAt: s.renewAt ?? null,
    lastAttemptAt: s.lastAttemptAt ?? null,
    lastError: s.lastError ?? null,
    failures: s.failures,
    nextAttemptAt: s.nextAttemptAt ?? null,
  };
}

/**
 * StoreIssuanceLock is the IssuanceLock across every edge on one database: a row per name with an
 * owner and an expiry, taken in one conditional statement (EdgeCertRepo.tryLock). An edge that dies
 * holding a lock blocks that name for at most the ttl. Times come from this host's clock; edges whose
 * clocks disagree by less than the ttl (minutes) still exclude each other.
 */
export class StoreIssuanceLock implements IssuanceLock {
  readonly #repo: EdgeCertRepo;
  readonly #now: () => number;

  constructor(repo: EdgeCertRepo, now: () => number = Date.now) {
    this.#repo = repo;
    this.#now = now;
  }

  async tryAcquire(name: string, ttlMs: number): Promise<LockHandle | undefined> {
    const owner = randomBytes(12).toString('hex');
    if (!(await this.#repo.tryLock(name, owner, this.#now(), ttlMs))) return undefined;
    return {
      refresh: () => this.#repo.refreshLock(name, owner, this.#now(), ttlMs),
      release: () => this.#repo.releaseLock(name, owner),
    };
  }
}

/**
 * copyCertStore copies every certificate, status and the given ACME accounts from one CertStore to
 * another, leaving names the target already has alone. `ward server` uses it once to move the
 * file-based store of earlier versions into the database; it returns how many names it copied.
 */
export async function copyCertStore(from: CertStore, to: CertStore, directoryUrls: readonly string[]): Promise<number> {
  let copied = 0;
  const names = new Set([...(await from.listCertificates()), ...(await from.listStatus()).map((s) => s.name)]);
  for (const name of names) {
    if ((await to.getStatus(name)) || (await to.getCertificate(name))) continue;
    const cert = await from.getCertificate(name);
    if (cert) await to.putCertificate(cert);
    const status = await from.getStatus(name);
    if (status) await to.putStatus(status);
    copied++;
  }
  for (const url of directoryUrls) {
    const account = await from.getAccount(url);
    if (account && !(await to.getAccount(url))) await to.putAccount(account);
  }
  return copied;
}

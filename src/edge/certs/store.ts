import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sealer } from './sealer.ts';

/** StoredCertificate is a certificate chain and its private key, as the edge serves it. */
export interface StoredCertificate {
  /** name is the managed name the certificate was issued for (its first SAN). */
  name: string;
  /** names are every DNS name the certificate covers, lower-case. */
  names: string[];
  /** certPem is the leaf followed by its intermediates. */
  certPem: string;
  /** keyPem is the private key. It exists in plaintext only in memory; stores keep it sealed. */
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
  /** source says how it got here: issued by ACME, or uploaded by an operator. */
  source: 'acme' | 'manual';
}

/** CertificateState is where a managed name stands. */
export type CertificateState = 'pending' | 'valid' | 'failing' | 'expired';

/** CertificateStatus is what `ward certs list/show` prints about a managed name. */
export interface CertificateStatus {
  name: string;
  state: CertificateState;
  notAfter: string | undefined;
  /** renewAt is when the next issuance is due (two thirds of the lifetime, with jitter). */
  renewAt: string | undefined;
  lastAttemptAt: string | undefined;
  /** lastError is the CA's or the validation's message from the last failed attempt. */
  lastError: string | undefined;
  /** failures counts consecutive failed attempts; it drives the backoff. */
  failures: number;
  /** nextAttemptAt is when a failed issuance is tried again (backoff or the CA's Retry-After). */
  nextAttemptAt: string | undefined;
}

/** AcmeAccount is an ACME account on one CA directory. */
export interface AcmeAccount {
  directoryUrl: string;
  email: string | undefined;
  /** url is the account URL the CA returned (RFC 8555 §7.3). */
  url: string | undefined;
  keyPem: string;
}

/**
 * CertStore keeps certificates, their status and ACME accounts. Private keys are sealed by the store
 * before they touch storage and opened when read, so a copy of the storage alone reveals no key.
 * Methods may be called concurrently from one process; writes of one record are atomic (a reader sees
 * the old record or the new one). Several edges may share one store; the IssuanceLock, not the store,
 * keeps them from issuing the same name at once.
 */
export interface CertStore {
  getCertificate(name: string): Promise<StoredCertificate | undefined>;
  putCertificate(cert: StoredCertificate): Promise<void>;
  /** deleteCertificate removes the certificate and the name's status. */
  deleteCertificate(name: string): Promise<void>;
  /** listCertificates names every stored certificate. */
  listCertificates(): Promise<string[]>;
  getStatus(name: string): Promise<CertificateStatus | undefined>;
  putStatus(status: CertificateStatus): Promise<void>;
  /**
   * addStatus, when a store has it, records a status only if the name has none, in one step: with
   * several edges on one store, get-then-put could reset a name another edge has just issued.
   */
  addStatus?(status: CertificateStatus): Promise<boolean>;
  /** listStatus returns the status of every managed name, sorted by name. */
  listStatus(): Promise<CertificateStatus[]>;
  getAccount(directoryUrl: string): Promise<AcmeAccount | undefined>;
  putAccount(account: AcmeAccount): Promise<void>;
}

/**
 * LockHandle is a held lock. refresh extends it by its ttl and says whether it was still ours (false:
 * it expired and someone else took it, so stop); release gives it up if still ours.
 */
export interface LockHandle {
  refresh(): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * IssuanceLock makes sure one issuer at a time works on a name, across every edge that shares the
 * store: two concurrent orders for one name waste the CA's rate limit and race on the stored key.
 * tryAcquire never waits: it returns undefined when someone else holds the lock. Locks expire after
 * ttlMs unless refreshed, so an edge that died holding one blocks issuance for at most that long.
 */
export interface IssuanceLock {
  tryAcquire(name: string, ttlMs: number): Promise<LockHandle | undefined>;
}

// Names become file names, so they must be DNS names: no "/", no "..", nothing a path could abuse.
const NAME_RE = /^[a-z0-9*](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;

function checkName(name: string): string {
  if (!NAME_RE.test(name) || name.includes('..')) throw new RangeError(`invalid certificate name ${JSON.stringify(name)}`);
  return name.replace('*', '_wildcard_');
}

interface CertificateRecord {
  name: string;
  names: string[];
  certPem: string;
  keySealed: string;
  notBefore: string;
  notAfter: string;
  source: 'acme' | 'manual';
}

interface AccountRecord {
  directoryUrl: string;
  email: string | undefined;
  url: string | undefined;
  keySealed: string;
}

/**
 * FileCertStore is a CertStore in a directory (mode 0700, files 0600): `certs/`, `status/`, `accounts/`.
 * The control plane's Store-backed version replaces it later without touching the edge's data path.
 */
export class FileCertStore implements CertStore {
  readonly #dir: string;
  readonly #sealer: Sealer;

  constructor(dir: string, sealer: Sealer) {
    this.#dir = dir;
    this.#sealer = sealer;
  }

  async getCertificate(name: string): Promise<StoredCertificate | undefined> {
    const rec = await this.#read<CertificateRecord>('certs', checkName(name));
    if (!rec) return undefined;
    const key = await this.#sealer.open(rec.keySealed, `cert-key:${rec.name}`);
    return {
      name: rec.name,
      names: rec.names,
      certPem: rec.certPem,
      keyPem: key.toString('utf8'),
      notBefore: new Date(rec.notBefore),
      notAfter: new Date(rec.notAfter),
      source: rec.source,
    };
  }

  async putCertificate(cert: StoredCertificate): Promise<void> {
    const rec: CertificateRecord = {
      name: cert.name,
      names: cert.names,
      certPem: cert.certPem,
      keySealed: await this.#sealer.seal(Buffer.from(cert.keyPem, 'utf8'), `cert-key:${cert.name}`),
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      source: cert.source,
    };
    await this.#write('certs', checkName(cert.name), rec);
  }

  async deleteCertificate(name: string): Promise<void> {
    const file = checkName(name);
    await rm(join(this.#dir, 'certs', `${file}.json`), { force: true });
    await rm(join(this.#dir, 'status', `${file}.json`), { force: true });
  }

  async listCertificates(): Promise<string[]> {
    return (await this.#list<CertificateRecord>('certs')).map((r) => r.name);
  }

  async getStatus(name: string): Promise<CertificateStatus | undefined> {
    return this.#read<CertificateStatus>('status', checkName(name));
  }

  async putStatus(status: CertificateStatus): Promise<void> {
    await this.#write('status', checkName(status.name), status);
  }

  async listStatus(): Promise<CertificateStatus[]> {
    return (await this.#list<CertificateStatus>('status')).sort((a, b) => a.name.localeCompare(b.name));
  }

  async getAccount(directoryUrl: string): Promise<AcmeAccount | undefined> {
    const rec = await this.#read<AccountRecord>('accounts', accountFile(directoryUrl));
    if (!rec) return undefined;
    const key = await this.#sealer.open(rec.keySealed, `acme-account:${rec.directoryUrl}`);
    return { directoryUrl: rec.directoryUrl, email: rec.email, url: rec.url, keyPem: key.toString('utf8') };
  }

  async putAccount(account: AcmeAccount): Promise<void> {
    const rec: AccountRecord = {
      directoryUrl: account.directoryUrl,
      email: account.email,
      url: account.url,
      keySealed: await this.#sealer.seal(Buffer.from(account.keyPem, 'utf8'), `acme-account:${account.directoryUrl}`),
    };
    await this.#write('accounts', accountFile(account.directoryUrl), rec);
  }

  async #read<T>(kind: string, file: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(join(this.#dir, kind, `${file}.json`), 'utf8')) as T;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async #list<T>(kind: string): Promise<T[]> {
    let files: string[];
    try {
      files = await readdir(join(this.#dir, kind));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: T[] = [];
    for (const f of files) {
      if (!f.endsWith('.json')) continue;
      const rec = await this.#read<T>(kind, f.slice(0, -5));
      if (rec) out.push(rec);
    }
    return out;
  }

  async #write(kind: string, file: string, value: unknown): Promise<void> {
    const dir = join(this.#dir, kind);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeAtomic(join(dir, `${file}.json`), JSON.stringify(value, null, 2));
  }
}

function accountFile(directoryUrl: string): string {
  return createHash('sha256').update(directoryUrl).digest('hex').slice(0, 32);
}

/** writeAtomic writes a file (mode 0600) under a temporary name, syncs it and renames it into place. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

interface LockRecord {
  owner: string;
  expiresAt: number;
}

/**
 * FileIssuanceLock is an IssuanceLock in a directory. It holds across processes on one host (and on a
 * shared filesystem with atomic rename); edges on several hosts need the store-backed lock that the
 * control plane adds. Taking over an expired lock renames a new record over it and reads it back: of
 * two edges racing for the same expired lock, only the one whose record survived goes on.
 */
export class FileIssuanceLock implements IssuanceLock {
  readonly #dir: string;
  readonly #now: () => number;

  constructor(dir: string, now: () => number = Date.now) {
    this.#dir = dir;
    this.#now = now;
  }

  async tryAcquire(name: string, ttlMs: number): Promise<LockHandle | undefined> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const path = join(this.#dir, `${checkName(name)}.lock`);
    const owner = randomBytes(12).toString('hex');
    const record = (): string => JSON.stringify({ owner, expiresAt: this.#now() + ttlMs } satisfies LockRecord);
    const read = async (): Promise<LockRecord | undefined> => {
      try {
        return JSON.parse(await readFile(path, 'utf8')) as LockRecord;
      } catch {
        return undefined;
      }
    };
    try {
      const fh = await open(path, 'wx', 0o600);
      try {
        await fh.writeFile(record());
      } finally {
        await fh.close();
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const held = await read();
      // A record that does not parse is a holder that died mid-write; treat it as expired once it is old.
      const expired = held ? held.expiresAt <= this.#now() : ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0) < this.#now() - ttlMs;
      if (!expired) return undefined;
      await writeAtomic(path, record());
      if ((await read())?.owner !== owner) return undefined;
    }
    return {
      refresh: async () => {
        if ((await read())?.owner !== owner) return false;
        await writeAtomic(path, record());
        return true;
      },
      release: async () => {
        if ((await read())?.owner === owner) await rm(path, { force: true });
      },
    };
  }
}

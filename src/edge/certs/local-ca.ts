import { randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { CertificateIssuer } from './acme.ts';
import type { Sealer } from './sealer.ts';
import { certificateFacts } from './self-signed.ts';
import type { StoredCertificate } from './store.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** LOCAL_CA_CERT_FILE is the CA certificate's file name in the local CA's directory: the file people trust. */
export const LOCAL_CA_CERT_FILE = 'ca.crt';
const KEY_FILE = 'ca.key';
const KEY_CONTEXT = 'local-ca-key';
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** CA_DAYS: the CA outlives many leaves, so people trust it once; ten years. */
const CA_DAYS = 3650;
/**
 * LEAF_DAYS is a leaf's lifetime: 90 days, like Let's Encrypt's, well under the 398 days browsers accept
 * for server certificates; the CertManager renews at two thirds of it as it does for ACME.
 */
const LEAF_DAYS = 90;

type Keys = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
type SigningKey = Extract<Parameters<typeof x509.X509CertificateGenerator.create>[0], { signingKey: unknown }>['signingKey'];

/** localCaDir is where a server's local CA lives: `<data dir>/edge/local-ca` (ca.crt and the sealed ca.key). */
export function localCaDir(dataDir: string): string {
  return join(dataDir, 'edge', 'local-ca');
}

/**
 * LocalCaIssuer is a CertificateIssuer for machines no ACME CA can reach (acme_directory = "local", which
 * `ward up` uses): Ward's own certificate authority, made on first use in its directory, signs an
 * ECDSA P-256 leaf for the names at once, with no validation (only names the edge already routes are
 * asked for). The CA certificate (`ca.crt`, 0644) is what people add to their trust stores; the CA's
 * private key (`ca.key`, 0600) is sealed with the edge's sealer like every other edge key, so a copy of
 * the data directory without the master key cannot mint certificates that browsers trusting it accept.
 * Issued certificates say source "acme": issued automatically and renewed by the CertManager, unlike an
 * operator's "manual" ones.
 */
export class LocalCaIssuer implements CertificateIssuer {
  readonly #dir: string;
  readonly #sealer: Sealer;
  #ca: Promise<{ cert: x509.X509Certificate; key: webcrypto.CryptoKey }> | undefined;

  constructor(options: { dir: string; sealer: Sealer }) {
    this.#dir = options.dir;
    this.#sealer = options.sealer;
  }

  /** certFile is the CA certificate's path (it exists once ready() or issue() has run). */
  get certFile(): string {
    return join(this.#dir, LOCAL_CA_CERT_FILE);
  }

  /** ready loads the CA, making it first when there is none, and returns its certificate's PEM. */
  async ready(): Promise<string> {
    return (await this.#load()).cert.toString('pem') + '\n';
  }

  async issue(names: readonly string[]): Promise<StoredCertificate> {
    if (names.length === 0) throw new RangeError('issue needs at least one name');
    const ca = await this.#load();
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const now = Date.now();
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${names[0]!}`,
      issuer: ca.cert.subject,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + LEAF_DAYS * DAY_MS),
      signingAlgorithm: ALG,
      publicKey: keys.publicKey as unknown as x509.PublicKeyType,
      signingKey: ca.key as unknown as SigningKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: 'dns' as const, value: n }))),
        await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as x509.PublicKeyType),
      ],
    });
    const certPem = leaf.toString('pem') + '\n';
    const keyPem = pkcs8Pem(Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)));
    const facts = certificateFacts(certPem);
    return { name: names[0]!, names: facts.names, certPem, keyPem, notBefore: facts.notBefore, notAfter: facts.notAfter, source: 'acme' };
  }

  #load(): Promise<{ cert: x509.X509Certificate; key: webcrypto.CryptoKey }> {
    // One load per issuer; a failed one (a key that does not open) is tried again next time.
    this.#ca ??= this.#open().catch((e: unknown) => {
      this.#ca = undefined;
      throw e;
    });
    return this.#ca;
  }

  async #open(): Promise<{ cert: x509.X509Certificate; key: webcrypto.CryptoKey }> {
    let certPem: string | undefined;
    try {
      certPem = await readFile(this.certFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (certPem === undefined) return this.#create();
    const sealed = (await readFile(join(this.#dir, KEY_FILE), 'utf8')).trim();
    const der = await this.#sealer.open(sealed, KEY_CONTEXT);
    const key = await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
    return { cert: new x509.X509Certificate(certPem), key };
  }

  async #create(): Promise<{ cert: x509.X509Certificate; key: webcrypto.CryptoKey }> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const now = Date.now();
    // A name unique to this CA, so people who trust several (one per machine) can tell them apart.
    const name = `CN=Ward local CA ${hostname().replace(/[,+=<>#;"\\]/g, '')} ${randomBytes(3).toString('hex')}, O=Ward`;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name,
      keys: keys as unknown as Keys,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + CA_DAYS * DAY_MS),
      signingAlgorithm: ALG,
      extensions: [
        // pathLen 0: this CA signs leaves only, never another CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as x509.PublicKeyType),
      ],
    });
    const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    await mkdir(this.#dir, { recursive: true, mode: 0o755 });
    // The key first: a certificate on disk means its key is there too.
    await atomicWrite(join(this.#dir, KEY_FILE), (await this.#sealer.seal(der, KEY_CONTEXT)) + '\n', 0o600);
    await atomicWrite(this.certFile, cert.toString('pem') + '\n', 0o644);
    const key = await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
    return { cert, key };
  }
}

/** serial is a random positive 128-bit serial number (RFC 5280 §4.1.2.2: unique per CA, at most 20 octets). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function pkcs8Pem(der: Buffer): string {
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

async function atomicWrite(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, text, { mode, flag: 'wx' });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** KeyAndCertificate is a PEM private key (PKCS#8) and certificate (chain). */
export interface KeyAndCertificate {
  keyPem: string;
  certPem: string;
}

/**
 * selfSignedCertificate makes an ECDSA P-256 certificate, valid from an hour ago (clock skew) for
 * `days`. With no names it is the edge's default certificate: the one a handshake gets for an unknown
 * or missing SNI. That one names no customer, only "ward-edge", so probing the edge by IP or a made-up
 * name learns nothing about which apps it serves.
 */
export async function selfSignedCertificate(options: { commonName?: string; names?: readonly string[]; days?: number } = {}): Promise<KeyAndCertificate> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
  ];
  if (options.names && options.names.length > 0) {
    extensions.push(new x509.SubjectAlternativeNameExtension(options.names.map((n) => ({ type: 'dns' as const, value: n }))));
  }
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${options.commonName ?? 'ward-edge'}`,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + (options.days ?? 365) * 86_400_000),
    signingAlgorithm: alg,
    extensions,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  return { keyPem, certPem: cert.toString('pem') + '\n' };
}

// Kept here too for the callers that already import it from this file.
export { certificateFacts, type CertificateFacts } from './facts.ts';

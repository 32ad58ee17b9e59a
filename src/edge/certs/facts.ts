// What the edge reads from a certificate, with Node's own X.509 parser: small enough for the request
// path's processes (cluster workers) to load, unlike the X.509 library self-signed.ts needs to make one.
import { X509Certificate as NodeX509 } from 'node:crypto';

/** CertificateFacts are what the edge needs to know about a certificate chain's leaf. */
export interface CertificateFacts {
  names: string[];
  notBefore: Date;
  notAfter: Date;
  /** ocspUrl is the leaf's OCSP responder (Authority Information Access), if it names one. */
  ocspUrl: string | undefined;
  fingerprint256: string;
}

/** certificateFacts reads the leaf (first certificate) of a PEM chain. */
export function certificateFacts(certPem: string): CertificateFacts {
  const leaf = new NodeX509(certPem);
  const names = (leaf.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  const ocsp = /OCSP - URI:(\S+)/.exec(leaf.infoAccess ?? '');
  return {
    names,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    ocspUrl: ocsp?.[1],
    fingerprint256: leaf.fingerprint256,
  };
}

/**
 * Certificates for the edge: the CertificateSource the handshake reads, the store that keeps
 * certificates and ACME accounts (keys sealed), the issuance lock, the ACME issuer and the manager that
 * renews. See docs/edge.md.
 */
export { ACME_CHALLENGE_PREFIX, ChallengeStore } from './challenges.ts';
export type { ChallengeChange, ChallengeResponder } from './challenges.ts';
export { aesGcmSealer, SealedValueError } from './sealer.ts';
export type { Sealer } from './sealer.ts';
export { certificateFacts, selfSignedCertificate } from './self-signed.ts';
export type { CertificateFacts, KeyAndCertificate } from './self-signed.ts';
export { CertificateCache, storedFromPem } from './source.ts';
export type { CertificateMaterial, CertificateSource } from './source.ts';
export { FileCertStore, FileIssuanceLock } from './store.ts';
export { copyCertStore, StoreCertStore, StoreIssuanceLock } from './store-backed.ts';
export type { AcmeAccount, CertificateState, CertificateStatus, CertStore, IssuanceLock, LockHandle, StoredCertificate } from './store.ts';
export { AcmeIssuer, IssuanceError, toIssuanceError } from './acme.ts';
export type { AcmeIssuerOptions, CertificateIssuer, ChallengeType } from './acme.ts';
export { backoffDelay, CertManager, renewalTime } from './manager.ts';
export { OcspStapler, ocspTarget, postOcsp, readOcspResponse } from './ocsp.ts';
export type { OcspLog, OcspStaplerOptions } from './ocsp.ts';
export { LOCAL_CA_CERT_FILE, LocalCaIssuer, localCaDir } from './local-ca.ts';
export type { CertManagerLog, CertManagerOptions } from './manager.ts';

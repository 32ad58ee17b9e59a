/**
 * The secrets folder's public surface. The key hierarchy:
 *
 *   KEK (master key: --master-key-file, or a KMS)            KeyProvider: wrap / unwrap, nothing else
 *    ├── server root key (wrapped, data_keys 'server')       SealingKeys: TOTP secrets, edge keys (seal/unseal)
 *    └── one data key per app (wrapped, data_keys <app id>)  AppDataKey: secret values (AES-256-GCM), digests (HMAC)
 *
 * Rotating the KEK re-wraps the data keys and touches no value (rotate.ts). Delivery to instances is
 * delivery.ts; the write-only API lives in src/services/secrets.ts.
 */
export {
  createKeyFile,
  ephemeralKeyProvider,
  ephemeralSealingKeys,
  keyProviderFromBytes,
  MASTER_KEY_BYTES,
  nextKeyFile,
  openLocalKeyProvider,
  providerHolds,
  readKeyFile,
  seal,
  SealError,
  sealingKeysFromRoot,
  unseal,
  wrappedKeyId,
} from './keys.ts';
export type { KeyProvider, SealingKeys } from './keys.ts';
export { AppKeys, appKeyContext, openSealingKeys, SERVER_KEY_OWNER, serverKeyContext, type AppRef } from './data-keys.ts';
export {
  AppDataKey,
  MAX_SECRET_VALUE_BYTES,
  MAX_SECRETS_PER_APP,
  MAX_SECRETS_TOTAL_BYTES,
  RESERVED_PREFIX,
  SECRET_NAME_RE,
  SecretIntegrityError,
  secretNameProblem,
  secretValueProblem,
  type SecretRef,
} from './values.ts';
export { DotenvError, parseDotenv } from './dotenv.ts';
export { rewrapDataKeys, rotateMasterKey, type RewrapResult, type RotationResult, type RotateOptions } from './rotate.ts';
export {
  bearerHash,
  DELIVERY_TOKEN_PREFIX,
  DELIVERY_TOKEN_TTL_MS,
  HOST_CREDENTIAL_PREFIX,
  httpSecretsFetcher,
  isDeliveryToken,
  isHostCredential,
  newDeliveryToken,
  newHostCredential,
  type HttpFetcherOptions,
  type InstanceSecrets,
  type SecretsFetcher,
} from './delivery.ts';

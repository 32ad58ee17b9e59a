/**
 * The secrets folder's public surface: the master key (KeyProvider, the local key file) and sealing
 * values at rest with keys derived from it. The Secrets issue adds app secrets on top.
 */
export {
  ephemeralKeyProvider,
  keyProviderFromBytes,
  MASTER_KEY_BYTES,
  openLocalKeyProvider,
  seal,
  SealError,
  unseal,
} from './keys.ts';
export type { KeyProvider } from './keys.ts';

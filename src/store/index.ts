/**
 * The store folder's public surface: the Store interface and its two implementations, and openStore,
 * which picks one from the server's configuration.
 */
import { PostgresStore } from './postgres.ts';
import { SqliteStore } from './sqlite.ts';
import type { Store, StoreLogger } from './types.ts';

export type { ApiTokenRepo, AppRepo, AuditKeyRecord, AuditQuery, AuditRepo, FactorRepo, InviteRepo, MembershipRepo, OrgRepo, PolicyRepo, RecoveryCodeRepo, SessionRepo, Store, StoreLogger, ThrottleRepo, UserRepo } from './types.ts';
export type { HostRepo, InstanceRepo, ReleaseRepo } from './types.ts';
export type { DataKeyRecord, DataKeyRepo, HostCredentialRecord, HostCredentialRepo, SecretChange, SecretDeliveryRecord, SecretDeliveryRepo, SecretRepo, SecretValueRecord, SecretVersionRecord } from './types.ts';
export type { OrgNetworkRecord, OrgNetworkRepo, WireGuardPeerRecord, WireGuardPeerRepo } from './types.ts';
export type { HostMeshRecord, HostMeshRepo } from './types.ts';
export type { AcmeAccountRecord, EdgeCertificateRecord, EdgeCertRepo, EdgeCertStatusRecord } from './types.ts';
export type { VolumeRecord, VolumeRepo } from './types.ts';
export type { BackupConsistency, BackupPolicyRecord, BackupRepo, BackupRunEnd, BackupRunKind, BackupRunRecord, BackupRunStatus, BackupTargetRecord } from './types.ts';
export { StoreConflictError } from './types.ts';
export { SqliteStore, SQLITE_FILE } from './sqlite.ts';
export type { SqliteStoreOptions } from './sqlite.ts';
export { PostgresStore } from './postgres.ts';
export type { PostgresStoreOptions, PostgresTarget } from './postgres.ts';
export { MIGRATIONS } from './migrations.ts';
export type { Migration } from './migrations.ts';

/** DEFAULT_DATA_DIR is where `ward server` keeps its state when no --data-dir is given (shared/CLI.md). */
export const DEFAULT_DATA_DIR = '/var/lib/ward';

export interface OpenStoreOptions {
  /** dataDir holds the SQLite database when databaseUrl is not set; default DEFAULT_DATA_DIR. */
  dataDir?: string;
  /** databaseUrl selects PostgreSQL (`postgres://…`). */
  databaseUrl?: string;
  logger?: StoreLogger;
}

/**
 * openStore opens the Store the server is configured for: PostgreSQL when databaseUrl is set, else SQLite
 * in dataDir. Either way the schema is migrated before it returns. Problems the operator can fix are
 * UserErrors: `database_unreachable` (within about 5 s, never hanging), `invalid_config` for a malformed
 * URL, `data_dir` for a directory or file that cannot be used, and `unavailable` for a database
 * already migrated by a newer Ward.
 */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  if (opts.databaseUrl) return PostgresStore.open({ databaseUrl: opts.databaseUrl, logger: opts.logger });
  return SqliteStore.open({ dataDir: opts.dataDir ?? DEFAULT_DATA_DIR, logger: opts.logger });
}

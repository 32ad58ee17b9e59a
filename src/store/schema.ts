/**
 * The database schema as Kysely sees it: one interface per table, snake_case columns, portable types only
 * (text ids, text ISO-8601 UTC timestamps, integers). migrations.ts creates exactly these tables; the
 * repos in kysely-store.ts map rows to the camelCase domain types of src/core/types.ts.
 *
 * Integers that may exceed 2^31 (idle_timeout_ms) are `bigint` columns; PostgresStore parses int8 into a
 * JS number (and refuses values beyond Number.MAX_SAFE_INTEGER), so every column here reads back as the
 * type written below on both databases.
 */

export interface UsersTable {
  id: string;
  email: string;
  password_hash: string;
  created_at: string;
  updated_at: string;
}

export interface OrgsTable {
  id: string;
  name: string;
  created_at: string;
}

export interface MembershipsTable {
  id: string;
  org_id: string;
  user_id: string;
  role: string;
  created_at: string;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  kind: string;
  token_hash: string;
  created_at: string;
  last_used_at: string;
  idle_timeout_ms: number;
  expires_at: string;
  revoked_at: string | null;
}

export interface InvitesTable {
  id: string;
  org_id: string;
  role: string;
  code_hash: string;
  created_by: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  used_by: string | null;
}

export interface AppsTable {
  id: string;
  org_id: string;
  name: string;
  created_at: string;
  updated_at: string;
}

/** AuditEntriesTable holds the hash-chained audit log; columns are AuditRecord (src/audit/chain.ts). */
export interface AuditEntriesTable {
  chain: string;
  seq: number;
  id: string;
  at: string;
  org_id: string | null;
  actor_type: string;
  actor_id: string | null;
  actor_label: string | null;
  action: string;
  target: string | null;
  outcome: string;
  source_ip: string | null;
  request_id: string | null;
  /** details is the entry's details object as JSON text. */
  details: string;
  prev_hash: string;
  hash: string;
}

/** AuditCheckpointsTable holds signed chain heads; see Checkpoint in src/audit/chain.ts. */
export interface AuditCheckpointsTable {
  chain: string;
  seq: number;
  hash: string;
  at: string;
  key_id: string;
  signature: string;
}

/** AuditKeysTable lists every public key that has signed checkpoints (one per control-plane replica). */
export interface AuditKeysTable {
  key_id: string;
  public_key_pem: string;
  created_at: string;
}

/** AuthFactorsTable holds second factors (AuthFactor in src/core/types.ts); migration 3. */
export interface AuthFactorsTable {
  id: string;
  user_id: string;
  type: string;
  label: string;
  secret_sealed: string | null;
  public_data: string | null;
  counter: number | null;
  created_at: string;
  confirmed_at: string | null;
  last_used_at: string | null;
}

/** RecoveryCodesTable holds the SHA-256 of each MFA recovery code; migration 3. */
export interface RecoveryCodesTable {
  user_id: string;
  code_hash: string;
  created_at: string;
  used_at: string | null;
}

/** ApiTokensTable holds API tokens by the hash of their secret; migration 3. */
export interface ApiTokensTable {
  id: string;
  name: string;
  token_hash: string;
  org_id: string;
  app_id: string | null;
  scope: string;
  created_by: string;
  created_at: string;
  expires_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** OrgPoliciesTable holds each org's security policy; `require_mfa` is 0 or 1. Migration 3. */
export interface OrgPoliciesTable {
  org_id: string;
  require_mfa: number;
  session_idle_ms: number | null;
  updated_at: string;
  updated_by: string | null;
}

/** LoginThrottleTable counts failed logins per key (account or source address); migration 3. */
export interface LoginThrottleTable {
  key: string;
  failures: number;
  window_started_at: string;
  blocked_until: string | null;
}

/** HostsTable lists the hosts that run agents; capacity is JSON text ({memoryBytes, cpus}). Migration 4. */
export interface HostsTable {
  id: string;
  name: string;
  region: string;
  status: string;
  capacity: string;
  last_heartbeat: string;
  created_at: string;
}

/** ReleasesTable holds each deploy of an app (Release in src/core/runtime-types.ts); config is JSON text. Migration 4. */
export interface ReleasesTable {
  id: string;
  app_id: string;
  version: number;
  image_ref: string;
  image_digest: string;
  config: string;
  secrets_version: number | null;
  strategy: string;
  status: string;
  reason: string | null;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  /** target_count, previous_count, progress and steps: migration 7 (a deploy's resumable progress). */
  target_count: number | null;
  previous_count: number | null;
  progress: string | null;
  steps: number;
}

/** InstancesTable holds desired and observed state of each instance (Instance in src/core/runtime-types.ts). Migration 4. */
export interface InstancesTable {
  id: string;
  app_id: string;
  release_id: string;
  host_id: string;
  region: string;
  desired_state: string;
  restart_generation: number;
  observed_state: string;
  health: string;
  private_ipv6: string | null;
  private_ipv4: string | null;
  pid: number | null;
  restarts: number;
  last_exit_code: number | null;
  last_exit_reason: string | null;
  last_exit_at: string | null;
  last_log: string | null;
  started_at: string | null;
  created_at: string;
  updated_at: string;
}

/** DataKeysTable holds wrapped data keys: the server's root key (owner `server`) and one per app. Migration 5. */
export interface DataKeysTable {
  owner: string;
  app_id: string | null;
  wrapped_key: string;
  kek_id: string;
  created_at: string;
  rewrapped_at: string | null;
}

/** SecretVersionsTable holds one row per version of an app's secrets; `names` is a JSON array, `staged` 0 or 1. Migration 5. */
export interface SecretVersionsTable {
  app_id: string;
  version: number;
  change: string;
  staged: number;
  names: string;
  created_at: string;
  created_by: string | null;
}

/** SecretValuesTable holds secret values as ciphertext, one row per (app, name, version); `sealed` null is an unset. Migration 5. */
export interface SecretValuesTable {
  app_id: string;
  name: string;
  version: number;
  sealed: string | null;
  digest: string | null;
  created_at: string;
}

/** SecretDeliveriesTable holds single-use delivery tokens by their SHA-256. Migration 5. */
export interface SecretDeliveriesTable {
  token_hash: string;
  app_id: string;
  instance_id: string;
  host_id: string;
  secrets_version: number;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

/** HostCredentialsTable holds the SHA-256 of each host's agent credential. Migration 5. */
export interface HostCredentialsTable {
  host_id: string;
  token_hash: string;
  created_at: string;
}

/** OrgNetworksTable holds an org's private network settings; egress 'allow' or 'deny'. Migration 6. */
export interface OrgNetworksTable {
  org_id: string;
  prefix: string;
  egress: string;
  updated_at: string;
}

/** HostMeshTable holds each host's place in the WireGuard mesh: slice index, public key, endpoint. Migration 10. */
export interface HostMeshTable {
  host_id: string;
  mesh_index: number;
  public_key: string;
  endpoint: string;
  updated_at: string;
}

/** WireGuardPeersTable holds people's WireGuard peers (public keys and addresses). Migration 6. */
export interface WireGuardPeersTable {
  id: string;
  org_id: string;
  name: string;
  public_key: string;
  address: string;
  created_by: string | null;
  created_at: string;
}

/** VolumesTable holds encrypted volumes and their wrapped keys. Migration 8. */
export interface VolumesTable {
  id: string;
  org_id: string;
  app_id: string;
  name: string;
  region: string;
  host_id: string;
  size_bytes: number;
  wrapped_key: string;
  sealed_with: string;
  encryption: string | null;
  formatted_at: string | null;
  created_by: string | null;
  created_at: string;
}

/** BackupTargetsTable holds each org's restic repository and its sealed password. Migration 9. */
export interface BackupTargetsTable {
  org_id: string;
  repository: string;
  password_sealed: string;
  next_drill_at: string;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

/** BackupPoliciesTable holds a volume's backup schedule (cron) and retention counts. Migration 9. */
export interface BackupPoliciesTable {
  volume_id: string;
  org_id: string;
  schedule: string;
  keep_daily: number;
  keep_weekly: number;
  keep_monthly: number;
  keep_yearly: number;
  next_run_at: string;
  updated_at: string;
}

/** BackupRunsTable records every backup, restore and drill attempt, failed ones too. Migration 9. */
export interface BackupRunsTable {
  id: string;
  org_id: string;
  app_id: string | null;
  volume_id: string;
  volume_name: string;
  kind: string;
  trigger: string;
  status: string;
  snapshot_id: string | null;
  consistency: string | null;
  files: number | null;
  bytes: number | null;
  duration_ms: number | null;
  error: string | null;
  details: string | null;
  requested_by: string | null;
  started_at: string;
  finished_at: string | null;
  pruned_at: string | null;
}

/** WardMigrationsTable records each applied migration; see migrate.ts. */
export interface WardMigrationsTable {
  version: number;
  name: string;
  applied_at: string;
}

/** EdgeCertificatesTable holds the edge's certificates: the chain in PEM, the key sealed; `names` is a JSON array. Migration 11. */
export interface EdgeCertificatesTable {
  name: string;
  names: string;
  cert_pem: string;
  key_sealed: string;
  not_before: string;
  not_after: string;
  source: string;
  updated_at: string;
}

/** EdgeCertStatusTable holds where each managed name stands (pending, valid, failing, expired). Migration 11. */
export interface EdgeCertStatusTable {
  name: string;
  state: string;
  not_after: string | null;
  renew_at: string | null;
  last_attempt_at: string | null;
  last_error: string | null;
  failures: number;
  next_attempt_at: string | null;
}

/** AcmeAccountsTable holds one ACME account per CA directory, its key sealed. Migration 11. */
export interface AcmeAccountsTable {
  directory_url: string;
  email: string | null;
  url: string | null;
  key_sealed: string;
}

/** EdgeCertOwnersTable records which app asked for a name with `ward certs add -a APP`. Migration 11. */
export interface EdgeCertOwnersTable {
  name: string;
  app: string;
}

/** EdgeIssuanceLocksTable holds one issuance lock per name; expires_at is epoch milliseconds (bigint). Migration 11. */
export interface EdgeIssuanceLocksTable {
  name: string;
  owner: string;
  expires_at: number;
}

/** DB is the whole schema, the type parameter of every Kysely<DB> in this folder. */
export interface DB {
  users: UsersTable;
  orgs: OrgsTable;
  memberships: MembershipsTable;
  sessions: SessionsTable;
  invites: InvitesTable;
  apps: AppsTable;
  audit_entries: AuditEntriesTable;
  audit_checkpoints: AuditCheckpointsTable;
  audit_keys: AuditKeysTable;
  auth_factors: AuthFactorsTable;
  recovery_codes: RecoveryCodesTable;
  api_tokens: ApiTokensTable;
  org_policies: OrgPoliciesTable;
  login_throttle: LoginThrottleTable;
  hosts: HostsTable;
  releases: ReleasesTable;
  instances: InstancesTable;
  data_keys: DataKeysTable;
  secret_versions: SecretVersionsTable;
  secret_values: SecretValuesTable;
  secret_deliveries: SecretDeliveriesTable;
  host_credentials: HostCredentialsTable;
  org_networks: OrgNetworksTable;
  wireguard_peers: WireGuardPeersTable;
  host_mesh: HostMeshTable;
  edge_certificates: EdgeCertificatesTable;
  edge_cert_status: EdgeCertStatusTable;
  acme_accounts: AcmeAccountsTable;
  edge_cert_owners: EdgeCertOwnersTable;
  edge_issuance_locks: EdgeIssuanceLocksTable;
  volumes: VolumesTable;
  backup_targets: BackupTargetsTable;
  backup_policies: BackupPoliciesTable;
  backup_runs: BackupRunsTable;
  ward_migrations: WardMigrationsTable;
}

/**
 * CONSTRAINTS maps each uniqueness rule to the name it has in PostgreSQL (the `constraint` field of a
 * 23505 error) and the column list SQLite reports ("UNIQUE constraint failed: <columns>"), so both
 * databases' conflicts map to the same StoreConflictError.constraint. Primary keys are listed too: ids
 * come from callers, and a duplicate one is a conflict like any other.
 */
export const CONSTRAINTS = [
  { rule: 'users.email', pg: 'users_email_key', sqlite: 'users.email' },
  { rule: 'orgs.name', pg: 'orgs_name_key', sqlite: 'orgs.name' },
  { rule: 'apps.name', pg: 'apps_name_key', sqlite: 'apps.name' },
  { rule: 'memberships.org_user', pg: 'memberships_org_user_key', sqlite: 'memberships.org_id, memberships.user_id' },
  { rule: 'sessions.token_hash', pg: 'sessions_token_hash_key', sqlite: 'sessions.token_hash' },
  { rule: 'invites.code_hash', pg: 'invites_code_hash_key', sqlite: 'invites.code_hash' },
  { rule: 'users.id', pg: 'users_pkey', sqlite: 'users.id' },
  { rule: 'orgs.id', pg: 'orgs_pkey', sqlite: 'orgs.id' },
  { rule: 'memberships.id', pg: 'memberships_pkey', sqlite: 'memberships.id' },
  { rule: 'sessions.id', pg: 'sessions_pkey', sqlite: 'sessions.id' },
  { rule: 'invites.id', pg: 'invites_pkey', sqlite: 'invites.id' },
  { rule: 'apps.id', pg: 'apps_pkey', sqlite: 'apps.id' },
  { rule: 'audit_entries.chain_seq', pg: 'audit_entries_pkey', sqlite: 'audit_entries.chain, audit_entries.seq' },
  { rule: 'audit_checkpoints.chain_seq', pg: 'audit_checkpoints_pkey', sqlite: 'audit_checkpoints.chain, audit_checkpoints.seq' },
  { rule: 'audit_keys.key_id', pg: 'audit_keys_pkey', sqlite: 'audit_keys.key_id' },
  { rule: 'auth_factors.id', pg: 'auth_factors_pkey', sqlite: 'auth_factors.id' },
  // A partial unique index (type = 'totp'); SQLite names only the indexed column.
  { rule: 'auth_factors.user_totp', pg: 'auth_factors_user_totp_key', sqlite: 'auth_factors.user_id' },
  { rule: 'recovery_codes.user_code', pg: 'recovery_codes_pkey', sqlite: 'recovery_codes.user_id, recovery_codes.code_hash' },
  { rule: 'api_tokens.id', pg: 'api_tokens_pkey', sqlite: 'api_tokens.id' },
  { rule: 'api_tokens.token_hash', pg: 'api_tokens_token_hash_key', sqlite: 'api_tokens.token_hash' },
  { rule: 'org_policies.org_id', pg: 'org_policies_pkey', sqlite: 'org_policies.org_id' },
  { rule: 'login_throttle.key', pg: 'login_throttle_pkey', sqlite: 'login_throttle.key' },
  { rule: 'hosts.id', pg: 'hosts_pkey', sqlite: 'hosts.id' },
  { rule: 'hosts.name', pg: 'hosts_name_key', sqlite: 'hosts.name' },
  { rule: 'releases.id', pg: 'releases_pkey', sqlite: 'releases.id' },
  { rule: 'releases.app_version', pg: 'releases_app_version_key', sqlite: 'releases.app_id, releases.version' },
  { rule: 'instances.id', pg: 'instances_pkey', sqlite: 'instances.id' },
  { rule: 'data_keys.owner', pg: 'data_keys_pkey', sqlite: 'data_keys.owner' },
  { rule: 'secret_versions.app_version', pg: 'secret_versions_pkey', sqlite: 'secret_versions.app_id, secret_versions.version' },
  { rule: 'secret_values.app_name_version', pg: 'secret_values_pkey', sqlite: 'secret_values.app_id, secret_values.name, secret_values.version' },
  { rule: 'secret_deliveries.token_hash', pg: 'secret_deliveries_pkey', sqlite: 'secret_deliveries.token_hash' },
  { rule: 'host_credentials.host_id', pg: 'host_credentials_pkey', sqlite: 'host_credentials.host_id' },
  { rule: 'host_credentials.token_hash', pg: 'host_credentials_token_hash_key', sqlite: 'host_credentials.token_hash' },
  { rule: 'org_networks.org_id', pg: 'org_networks_pkey', sqlite: 'org_networks.org_id' },
  { rule: 'wireguard_peers.id', pg: 'wireguard_peers_pkey', sqlite: 'wireguard_peers.id' },
  { rule: 'wireguard_peers.org_name', pg: 'wireguard_peers_org_name_key', sqlite: 'wireguard_peers.org_id, wireguard_peers.name' },
  { rule: 'wireguard_peers.org_address', pg: 'wireguard_peers_org_address_key', sqlite: 'wireguard_peers.org_id, wireguard_peers.address' },
  { rule: 'wireguard_peers.public_key', pg: 'wireguard_peers_public_key_key', sqlite: 'wireguard_peers.public_key' },
  { rule: 'edge_certificates.name', pg: 'edge_certificates_pkey', sqlite: 'edge_certificates.name' },
  { rule: 'edge_cert_status.name', pg: 'edge_cert_status_pkey', sqlite: 'edge_cert_status.name' },
  { rule: 'acme_accounts.directory_url', pg: 'acme_accounts_pkey', sqlite: 'acme_accounts.directory_url' },
  { rule: 'edge_cert_owners.name', pg: 'edge_cert_owners_pkey', sqlite: 'edge_cert_owners.name' },
  { rule: 'edge_issuance_locks.name', pg: 'edge_issuance_locks_pkey', sqlite: 'edge_issuance_locks.name' },
  { rule: 'host_mesh.host_id', pg: 'host_mesh_pkey', sqlite: 'host_mesh.host_id' },
  { rule: 'host_mesh.mesh_index', pg: 'host_mesh_mesh_index_key', sqlite: 'host_mesh.mesh_index' },
  { rule: 'host_mesh.public_key', pg: 'host_mesh_public_key_key', sqlite: 'host_mesh.public_key' },
  { rule: 'volumes.id', pg: 'volumes_pkey', sqlite: 'volumes.id' },
  { rule: 'volumes.app_name', pg: 'volumes_app_name_key', sqlite: 'volumes.app_id, volumes.name' },
  { rule: 'backup_targets.org_id', pg: 'backup_targets_pkey', sqlite: 'backup_targets.org_id' },
  { rule: 'backup_policies.volume_id', pg: 'backup_policies_pkey', sqlite: 'backup_policies.volume_id' },
  { rule: 'backup_runs.id', pg: 'backup_runs_pkey', sqlite: 'backup_runs.id' },
] as const;

/** constraintName returns the PostgreSQL name of a uniqueness rule, for the DDL in migrations.ts. */
export function constraintName(rule: (typeof CONSTRAINTS)[number]['rule']): string {
  return CONSTRAINTS.find((c) => c.rule === rule)!.pg;
}

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

/** WardMigrationsTable records each applied migration; see migrate.ts. */
export interface WardMigrationsTable {
  version: number;
  name: string;
  applied_at: string;
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
] as const;

/** constraintName returns the PostgreSQL name of a uniqueness rule, for the DDL in migrations.ts. */
export function constraintName(rule: (typeof CONSTRAINTS)[number]['rule']): string {
  return CONSTRAINTS.find((c) => c.rule === rule)!.pg;
}

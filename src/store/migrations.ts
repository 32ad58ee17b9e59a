import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { constraintName } from './schema.ts';

/**
 * Migration is one forward-only step of the schema. `version` numbers are consecutive from 1 and never
 * reused; a released migration is never edited (add a new one instead), because databases in the field
 * have already run it. `up` uses Kysely's schema builder so the same DDL runs on SQLite and PostgreSQL;
 * it runs inside the migration transaction (see migrate.ts) and must not commit by itself.
 */
export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<any>): Promise<void>;
}

/**
 * edgeCertificates is migration 11 (issue "Edge", docs/edge.md "Certificates"): the edge's certificates
 * and ACME accounts with their keys sealed (the store never holds a plaintext key), each managed name's
 * status, the app that asked for a name, and the per-name issuance lock with its expiry, so edges that
 * share this database order one name at a time. Names are DNS names, lower-case.
 */
const edgeCertificates: Migration = {
  version: 11,
  name: 'edge-certificates',
  async up(db) {
    await db.schema
      .createTable('edge_certificates')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('names', 'text', (c) => c.notNull())
      .addColumn('cert_pem', 'text', (c) => c.notNull())
      .addColumn('key_sealed', 'text', (c) => c.notNull())
      .addColumn('not_before', 'text', (c) => c.notNull())
      .addColumn('not_after', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint(constraintName('edge_certificates.name'), ['name'])
      .execute();
    await db.schema
      .createTable('edge_cert_status')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('not_after', 'text')
      .addColumn('renew_at', 'text')
      .addColumn('last_attempt_at', 'text')
      .addColumn('last_error', 'text')
      .addColumn('failures', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_at', 'text')
      .addPrimaryKeyConstraint(constraintName('edge_cert_status.name'), ['name'])
      .execute();
    await db.schema
      .createTable('acme_accounts')
      .addColumn('directory_url', 'text', (c) => c.notNull())
      .addColumn('email', 'text')
      .addColumn('url', 'text')
      .addColumn('key_sealed', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint(constraintName('acme_accounts.directory_url'), ['directory_url'])
      .execute();
    // By app name, like the route table: `ward certs add -a APP NAME` routes NAME to APP.
    await db.schema
      .createTable('edge_cert_owners')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('app', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint(constraintName('edge_cert_owners.name'), ['name'])
      .execute();
    // expires_at in epoch milliseconds (bigint: past 2038 in seconds, past 2^31 in milliseconds now).
    await db.schema
      .createTable('edge_issuance_locks')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('owner', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint(constraintName('edge_issuance_locks.name'), ['name'])
      .execute();
  },
};

/**
 * MIGRATIONS is the ordered list of every migration this code knows. The last version is the schema that
 * schema.ts describes.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'accounts-orgs-sessions-invites-apps',
    async up(db) {
      // Column-level NOT NULL on text primary keys: SQLite otherwise accepts NULL ids (a legacy quirk).
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('users.id'), ['id'])
        .addUniqueConstraint(constraintName('users.email'), ['email'])
        .execute();

      await db.schema
        .createTable('orgs')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('orgs.id'), ['id'])
        .addUniqueConstraint(constraintName('orgs.name'), ['name'])
        .execute();

      await db.schema
        .createTable('memberships')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('memberships.id'), ['id'])
        .addUniqueConstraint(constraintName('memberships.org_user'), ['org_id', 'user_id'])
        .execute();
      // The (org_id, user_id) key serves lookups by org; lookups by user (orgs.listForUser) need their own.
      await db.schema.createIndex('memberships_user_id_idx').on('memberships').column('user_id').execute();

      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text', (c) => c.notNull())
        // bigint: an idle timeout of more than 24.8 days would overflow a 32-bit integer.
        .addColumn('idle_timeout_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addPrimaryKeyConstraint(constraintName('sessions.id'), ['id'])
        .addUniqueConstraint(constraintName('sessions.token_hash'), ['token_hash'])
        .execute();
      await db.schema.createIndex('sessions_user_id_idx').on('sessions').column('user_id').execute();

      await db.schema
        .createTable('invites')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('code_hash', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        // A used invite outlives the user who used it; only the link is dropped.
        .addColumn('used_by', 'text', (c) => c.references('users.id').onDelete('set null'))
        .addPrimaryKeyConstraint(constraintName('invites.id'), ['id'])
        .addUniqueConstraint(constraintName('invites.code_hash'), ['code_hash'])
        .execute();
      await db.schema.createIndex('invites_org_id_idx').on('invites').column('org_id').execute();

      await db.schema
        .createTable('apps')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('apps.id'), ['id'])
        // Global, not per org: an app's name is its DNS label (<app>.internal, <app>.<domain>).
        .addUniqueConstraint(constraintName('apps.name'), ['name'])
        .execute();
      await db.schema.createIndex('apps_org_id_idx').on('apps').column('org_id').execute();
    },
  },
  {
    version: 2,
    name: 'audit-log',
    async up(db) {
      // One row per audit entry; the columns are AuditRecord (src/audit/chain.ts). `details` is JSON text
      // so both databases store it byte for byte the same and it hashes the same when read back.
      await db.schema
        .createTable('audit_entries')
        .addColumn('chain', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text')
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('actor_label', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('source_ip', 'text')
        .addColumn('request_id', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        // No foreign key to orgs: the log must outlive what it records (a destroyed org keeps its trail).
        .addPrimaryKeyConstraint(constraintName('audit_entries.chain_seq'), ['chain', 'seq'])
        .execute();
      await db.schema.createIndex('audit_entries_org_at_idx').on('audit_entries').columns(['org_id', 'at']).execute();

      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('chain', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('audit_checkpoints.chain_seq'), ['chain', 'seq'])
        .execute();

      // Every control-plane replica signs with its own key; verifiers need all their public keys.
      await db.schema
        .createTable('audit_keys')
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('public_key_pem', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('audit_keys.key_id'), ['key_id'])
        .execute();
    },
  },
  {
    version: 3,
    name: 'mfa-tokens-policies-throttle',
    async up(db) {
      // Second factors of every type share one table; `type` says how to read secret_sealed, public_data and
      // counter, so WebAuthn credentials need no new migration of their own.
      await db.schema
        .createTable('auth_factors')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('label', 'text', (c) => c.notNull())
        .addColumn('secret_sealed', 'text')
        .addColumn('public_data', 'text')
        // bigint: a WebAuthn signature counter is 32-bit unsigned; a TOTP step fits either way.
        .addColumn('counter', 'bigint')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('confirmed_at', 'text')
        .addColumn('last_used_at', 'text')
        .addPrimaryKeyConstraint(constraintName('auth_factors.id'), ['id'])
        .execute();
      // One TOTP factor per person (pending or confirmed); other types may have several.
      await db.schema
        .createIndex(constraintName('auth_factors.user_totp'))
        .on('auth_factors')
        .column('user_id')
        .unique()
        .where(sql.ref('type'), '=', sql.lit('totp'))
        .execute();
      await db.schema.createIndex('auth_factors_user_id_idx').on('auth_factors').column('user_id').execute();

      await db.schema
        .createTable('recovery_codes')
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('code_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .addPrimaryKeyConstraint(constraintName('recovery_codes.user_code'), ['user_id', 'code_hash'])
        .execute();

      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        // A destroyed app takes its tokens along: a new app of the same name must not inherit them.
        .addColumn('app_id', 'text', (c) => c.references('apps.id').onDelete('cascade'))
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .addPrimaryKeyConstraint(constraintName('api_tokens.id'), ['id'])
        .addUniqueConstraint(constraintName('api_tokens.token_hash'), ['token_hash'])
        .execute();
      await db.schema.createIndex('api_tokens_created_by_idx').on('api_tokens').column('created_by').execute();
      await db.schema.createIndex('api_tokens_org_id_idx').on('api_tokens').column('org_id').execute();

      await db.schema
        .createTable('org_policies')
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('require_mfa', 'integer', (c) => c.notNull())
        .addColumn('session_idle_ms', 'bigint')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        // The policy outlives the person who last set it; only the link is dropped.
        .addColumn('updated_by', 'text', (c) => c.references('users.id').onDelete('set null'))
        .addPrimaryKeyConstraint(constraintName('org_policies.org_id'), ['org_id'])
        .execute();

      // Keys are "account:<sha-256 of the email>" or "source:<address>"; no foreign key, because unknown
      // emails are throttled exactly like known ones.
      await db.schema
        .createTable('login_throttle')
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('window_started_at', 'text', (c) => c.notNull())
        .addColumn('blocked_until', 'text')
        .addPrimaryKeyConstraint(constraintName('login_throttle.key'), ['key'])
        .execute();
    },
  },
  {
    version: 4,
    name: 'hosts-releases-instances',
    async up(db) {
      // Hosts that run agents. capacity is JSON text ({memoryBytes, cpus}): portable, and a float of
      // CPUs needs no dialect-specific column type.
      await db.schema
        .createTable('hosts')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('region', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('capacity', 'text', (c) => c.notNull())
        .addColumn('last_heartbeat', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('hosts.id'), ['id'])
        .addUniqueConstraint(constraintName('hosts.name'), ['name'])
        .execute();

      // One row per deploy of an app: version counts 1, 2, … per app. config is the normalized
      // ward.toml as JSON text; secrets_version pins the secrets the release runs with (issue "Secrets").
      await db.schema
        .createTable('releases')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('image_ref', 'text', (c) => c.notNull())
        .addColumn('image_digest', 'text', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('secrets_version', 'integer')
        .addColumn('strategy', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        // The person (a token acts for its creator) who deployed; null once they are gone, or for Ward itself.
        .addColumn('created_by', 'text', (c) => c.references('users.id').onDelete('set null'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('releases.id'), ['id'])
        .addUniqueConstraint(constraintName('releases.app_version'), ['app_id', 'version'])
        .execute();
      await db.schema.createIndex('releases_status_idx').on('releases').column('status').execute();

      // Instances: desired_state is the control plane's wish, the observed columns are the agent's
      // reports. restart_generation is bumped to ask for a restart; the agent applies each value once.
      await db.schema
        .createTable('instances')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
        .addColumn('release_id', 'text', (c) => c.notNull().references('releases.id').onDelete('cascade'))
        .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
        .addColumn('region', 'text', (c) => c.notNull())
        .addColumn('desired_state', 'text', (c) => c.notNull())
        .addColumn('restart_generation', 'integer', (c) => c.notNull())
        .addColumn('observed_state', 'text', (c) => c.notNull())
        .addColumn('health', 'text', (c) => c.notNull())
        .addColumn('private_ipv6', 'text')
        .addColumn('private_ipv4', 'text')
        .addColumn('pid', 'integer')
        .addColumn('restarts', 'integer', (c) => c.notNull())
        .addColumn('last_exit_code', 'integer')
        .addColumn('last_exit_reason', 'text')
        .addColumn('last_exit_at', 'text')
        // last_log is the tail of the instance's output when it failed (JSON array of lines, capped).
        .addColumn('last_log', 'text')
        .addColumn('started_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('instances.id'), ['id'])
        .execute();
      await db.schema.createIndex('instances_app_id_idx').on('instances').column('app_id').execute();
      await db.schema.createIndex('instances_host_id_idx').on('instances').column('host_id').execute();
      await db.schema.createIndex('instances_release_id_idx').on('instances').column('release_id').execute();
    },
  },
  {
    version: 5,
    name: 'secrets-vault',
    async up(db) {
      // Data keys, wrapped by the KEK (src/secrets). An app's key is deleted with the app: every copy of
      // its ciphertext, in backups too, becomes unreadable (crypto-shredding). The server's own root key
      // has owner 'server' and no app.
      await db.schema
        .createTable('data_keys')
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.references('apps.id').onDelete('cascade'))
        .addColumn('wrapped_key', 'text', (c) => c.notNull())
        .addColumn('kek_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('rewrapped_at', 'text')
        .addPrimaryKeyConstraint(constraintName('data_keys.owner'), ['owner'])
        .execute();

      await db.schema
        .createTable('secret_versions')
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('change', 'text', (c) => c.notNull())
        .addColumn('staged', 'integer', (c) => c.notNull())
        .addColumn('names', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.references('users.id').onDelete('set null'))
        .addPrimaryKeyConstraint(constraintName('secret_versions.app_version'), ['app_id', 'version'])
        .execute();

      // Values are ciphertext only; `sealed` null records an unset. Rows are kept per version so a
      // release (or a rollback to it) gets exactly the values it pinned.
      await db.schema
        .createTable('secret_values')
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('sealed', 'text')
        .addColumn('digest', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('secret_values.app_name_version'), ['app_id', 'name', 'version'])
        .execute();

      // Single-use delivery tokens, by SHA-256. They go with their instance and host.
      await db.schema
        .createTable('secret_deliveries')
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
        .addColumn('instance_id', 'text', (c) => c.notNull().references('instances.id').onDelete('cascade'))
        .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id').onDelete('cascade'))
        .addColumn('secrets_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .addPrimaryKeyConstraint(constraintName('secret_deliveries.token_hash'), ['token_hash'])
        .execute();
      await db.schema.createIndex('secret_deliveries_expires_at_idx').on('secret_deliveries').column('expires_at').execute();

      // The credential an agent authenticates with, one per host, by SHA-256.
      await db.schema
        .createTable('host_credentials')
        .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id').onDelete('cascade'))
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('host_credentials.host_id'), ['host_id'])
        .addUniqueConstraint(constraintName('host_credentials.token_hash'), ['token_hash'])
        .execute();
    },
  },
  {
    version: 6,
    name: 'private-networking',
    async up(db) {
      // An org's private network settings (docs/networking.md): its ULA /48 and whether its instances
      // may reach the outside. An org without a row has the derived prefix and egress allowed.
      await db.schema
        .createTable('org_networks')
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('prefix', 'text', (c) => c.notNull())
        .addColumn('egress', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('org_networks.org_id'), ['org_id'])
        .execute();

      // People's WireGuard peers: public keys only (the private key never reaches the server).
      await db.schema
        .createTable('wireguard_peers')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.references('users.id').onDelete('set null'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('wireguard_peers.id'), ['id'])
        .addUniqueConstraint(constraintName('wireguard_peers.org_name'), ['org_id', 'name'])
        .addUniqueConstraint(constraintName('wireguard_peers.org_address'), ['org_id', 'address'])
        .addUniqueConstraint(constraintName('wireguard_peers.public_key'), ['public_key'])
        .execute();
    },
  },
  {
    version: 7,
    name: 'release-progress',
    async up(db) {
      // What a deploy needs to resume after a restart (issue "Deploys", docs/deploys.md): the number of
      // instances it ends with (strategies place them step by step), how many ran before it (what a
      // failed deploy restores), a progress line for people
      // ("2/3 replaced"), and a step counter that makes each step a conditional update (of two
      // control planes driving one deploy, one places the next instances).
      await db.schema.alterTable('releases').addColumn('target_count', 'integer').execute();
      await db.schema.alterTable('releases').addColumn('previous_count', 'integer').execute();
      await db.schema.alterTable('releases').addColumn('progress', 'text').execute();
      await db.schema.alterTable('releases').addColumn('steps', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
  },
  {
    version: 8,
    name: 'volumes',
    async up(db) {
      // Encrypted volumes (docs/volumes.md). The volume's own key is stored only sealed under the app's
      // data key (itself wrapped by the KEK), bound to org, app and volume; deleting the row is the
      // crypto-erase (the host's loop file stays ciphertext). An app's volumes go with the app; a host
      // cannot be removed while it holds volumes.
      await db.schema
        .createTable('volumes')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('region', 'text', (c) => c.notNull())
        .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
        .addColumn('size_bytes', 'bigint', (c) => c.notNull())
        .addColumn('wrapped_key', 'text', (c) => c.notNull())
        .addColumn('sealed_with', 'text', (c) => c.notNull())
        .addColumn('encryption', 'text')
        .addColumn('formatted_at', 'text')
        .addColumn('created_by', 'text', (c) => c.references('users.id').onDelete('set null'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('volumes.id'), ['id'])
        .addUniqueConstraint(constraintName('volumes.app_name'), ['app_id', 'name'])
        .execute();
      await db.schema.createIndex('volumes_host_id_idx').on('volumes').column('host_id').execute();
    },
  },
  {
    version: 9,
    name: 'backups',
    async up(db) {
      // Off-site backups (docs/backups.md). An org's restic repository and its password: a random key
      // sealed under the server's root data key (itself wrapped by the KEK), so a KEK rotation re-wraps
      // the root key and this stays readable. next_drill_at schedules the weekly restore drill.
      await db.schema
        .createTable('backup_targets')
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('repository', 'text', (c) => c.notNull())
        .addColumn('password_sealed', 'text', (c) => c.notNull())
        .addColumn('next_drill_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.references('users.id').onDelete('set null'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('backup_targets.org_id'), ['org_id'])
        .execute();
      // A volume's schedule and retention; the scheduler's next run is stored, so a restart resumes it.
      await db.schema
        .createTable('backup_policies')
        .addColumn('volume_id', 'text', (c) => c.notNull().references('volumes.id').onDelete('cascade'))
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('schedule', 'text', (c) => c.notNull())
        .addColumn('keep_daily', 'integer', (c) => c.notNull())
        .addColumn('keep_weekly', 'integer', (c) => c.notNull())
        .addColumn('keep_monthly', 'integer', (c) => c.notNull())
        .addColumn('keep_yearly', 'integer', (c) => c.notNull())
        .addColumn('next_run_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('backup_policies.volume_id'), ['volume_id'])
        .execute();
      await db.schema.createIndex('backup_policies_next_run_at_idx').on('backup_policies').column('next_run_at').execute();
      // Every attempt, failed ones too (what `ward backups list` shows). No foreign key to the volume or
      // app: the record of a backup outlives a destroyed volume, as the snapshot in the repository does.
      await db.schema
        .createTable('backup_runs')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('app_id', 'text')
        .addColumn('volume_id', 'text', (c) => c.notNull())
        .addColumn('volume_name', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('trigger', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('snapshot_id', 'text')
        .addColumn('consistency', 'text')
        .addColumn('files', 'bigint')
        .addColumn('bytes', 'bigint')
        .addColumn('duration_ms', 'bigint')
        .addColumn('error', 'text')
        .addColumn('details', 'text')
        .addColumn('requested_by', 'text', (c) => c.references('users.id').onDelete('set null'))
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .addColumn('pruned_at', 'text')
        .addPrimaryKeyConstraint(constraintName('backup_runs.id'), ['id'])
        .execute();
      await db.schema.createIndex('backup_runs_org_started_idx').on('backup_runs').columns(['org_id', 'started_at']).execute();
      await db.schema.createIndex('backup_runs_volume_started_idx').on('backup_runs').columns(['volume_id', 'started_at']).execute();
    },
  },
  {
    version: 10,
    name: 'host-mesh',
    async up(db) {
      // Each host's place in the WireGuard mesh (docs/networking.md): its slice index in every org
      // prefix (unique, assigned by the control plane, kept for good), the public key of the key pair
      // its agent owns (the private key never leaves the host) and its endpoint. No foreign key to
      // hosts: an agent registers its mesh key before its host row, so its network comes up with the
      // right slice before any instance is touched.
      await db.schema
        .createTable('host_mesh')
        .addColumn('host_id', 'text', (c) => c.notNull())
        .addColumn('mesh_index', 'integer', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('endpoint', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(constraintName('host_mesh.host_id'), ['host_id'])
        .addUniqueConstraint(constraintName('host_mesh.mesh_index'), ['mesh_index'])
        .addUniqueConstraint(constraintName('host_mesh.public_key'), ['public_key'])
        .execute();
    },
  },
  edgeCertificates,
];

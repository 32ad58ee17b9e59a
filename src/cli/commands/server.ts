import { UserError } from '../../core/index.ts';
import { defineCommand, type FlagSpec } from '../command.ts';

/** SERVER_FLAGS are the flags of shared/CLI.md "Running the platform", plus --config and --log-level. */
const SERVER_FLAGS = {
  'data-dir': { type: 'string', placeholder: 'DIR', description: 'Where state lives: SQLite database, keys (default /var/lib/ward)' },
  'database-url': { type: 'string', placeholder: 'URL', description: 'Keep state in PostgreSQL instead: postgres://…' },
  roles: { type: 'string', placeholder: 'ROLES', description: 'Comma-separated roles to run: control,agent,edge (default all three)' },
  'api-listen': { type: 'string', placeholder: 'HOST:PORT', description: 'Where the API listens (default 127.0.0.1:4280)' },
  'http-listen': { type: 'string', placeholder: 'HOST:PORT', description: 'Edge plain HTTP, for ACME http-01 and redirects (default :80)' },
  'https-listen': { type: 'string', placeholder: 'HOST:PORT', description: 'Edge HTTPS (default :443)' },
  'acme-directory': { type: 'string', placeholder: 'URL', description: "ACME directory URL (default Let's Encrypt)" },
  'acme-email': { type: 'string', placeholder: 'EMAIL', description: 'Contact email for the ACME account' },
  'acme-ca-file': { type: 'string', placeholder: 'PEM', description: "CA certificate to trust for the ACME directory's TLS" },
  domain: { type: 'string', placeholder: 'DOMAIN', description: 'Serve every app with [http_service] at <app>.DOMAIN too' },
  'edge-workers': { type: 'string', placeholder: 'N', description: 'Edge processes: auto (one per core, at most 8; the default) or 1–64; 1 serves the edge in this process' },
  'master-key-file': { type: 'string', placeholder: 'PATH', description: 'The key-encryption key; created 0600 on first start' },
  region: { type: 'string', placeholder: 'NAME', description: "This host's region" },
  hostname: { type: 'string', placeholder: 'NAME', description: "This host's name" },
  'wireguard-endpoint': { type: 'string', placeholder: 'HOST[:PORT]', description: "Where other hosts and people reach this host's WireGuard (default <hostname>:51820)" },
  config: { type: 'string', placeholder: 'FILE', description: 'A server config file (TOML); flags and the environment override it' },
  'log-level': { type: 'string', placeholder: 'LEVEL', description: 'trace, debug, info, warn or error (default info)' },
  'stop-instances-on-exit': { type: 'boolean', description: "Stop this host's instances when the server stops (ward up's server: `ward up --stop` leaves nothing running)" },
} as const satisfies Record<string, FlagSpec>;

export default defineCommand({
  name: 'server',
  summary: 'Run the Ward platform: control plane, agent and edge',
  description: [
    'Runs the roles named by --roles in this process: the control plane (the API and its state) and the',
    'agent, which runs this host\'s instances under crun (it needs root; --roles control runs without it).',
    'The edge serves the apps\' hostnames on --http-listen and --https-listen with ACME certificates; when it',
    'cannot bind them (ports below 1024 need root) the server runs on without it and says why.',
    'Stopping the server leaves the instances running; the next start adopts them.',
    'Without the control role (--roles agent,edge beside a --roles control on the same --database-url) it',
    'serves no API and runs no Deployer: the control plane does (docs/config.md, "Split roles").',
    '',
    'Each flag can also come from the environment (WARD_DATA_DIR for --data-dir, and so on) or from a',
    'snake_case key in the --config file (data_dir); flags win over the environment, which wins over the file.',
    '',
    'Logs are JSON lines on stdout. SIGINT or SIGTERM stops the server gracefully: it stops accepting,',
    'finishes requests in flight and closes the database; a second signal ends it at once.',
  ].join('\n'),
  examples: ['ward server --data-dir .ward-dev', 'ward server --database-url postgres://ward@db.internal/ward --api-listen 0.0.0.0:4280'],
  flags: SERVER_FLAGS,
  async run(ctx, { flags }) {
    // Loaded here, not at the top: the server pulls in Fastify, pino and the database drivers, which no
    // other command needs, and `ward version` should not pay for them.
    const [{ resolveServerConfig }, { startServer }] = await Promise.all([import('../../config/index.ts'), import('../../server/index.ts')]);
    const { config: file, 'stop-instances-on-exit': stopInstances, ...rest } = flags;
    const config = resolveServerConfig({ flags: rest, env: ctx.env, file, cwd: ctx.cwd });
    const server = await startServer(config).catch((e: unknown) => {
      throw listenError(e) ?? e;
    });
    const signalled = ctx.untilSignal();
    if (server.apiUrl) ctx.out.info(`Ward API listening on ${server.apiUrl}`);
    else ctx.out.info(`Ward ${config.roles.join(' and ')} running without the API and Deployer (no control role); the control plane serves them`);
    if (server.edge) {
      // The edge does not stop the server when it cannot bind (:80/:443 need root or CAP_NET_BIND_SERVICE).
      const where = (x: { address: string; port: number } | undefined) => (x ? `${x.address.includes(':') ? `[${x.address}]` : x.address}:${x.port}` : '-');
      const e = server.edge.error();
      if (e) ctx.out.info(`Warning: the edge is not running: ${e.message}${e.hint ? `\nHint: ${e.hint}` : ''}`);
      else ctx.out.info(`Ward edge listening on http ${where(server.edge.addresses().http)} and https ${where(server.edge.addresses().https)}`);
    }
    const signal = await signalled;
    ctx.out.info(`Received ${signal}; shutting down.`);
    await server.close({ stopInstances });
    ctx.out.info(stopInstances ? 'Stopped, with its instances.' : 'Stopped.');
  },
});

/**
 * listenError turns a socket that cannot be bound into a user error: a port already in use or a
 * privileged port is a setup problem the user fixes with a flag, not a bug in Ward.
 */
export function listenError(e: unknown): UserError | undefined {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  if (err?.syscall !== 'listen') return undefined;
  const where = err.address === undefined ? 'the address' : `${err.address.includes(':') ? `[${err.address}]` : err.address}:${err.port}`;
  if (err.code === 'EADDRINUSE') {
    return new UserError('invalid_config', `cannot listen on ${where}: another process is using it`, {
      hint: 'stop that process, or choose another address with --api-listen HOST:PORT',
      cause: e,
    });
  }
  if (err.code === 'EACCES') {
    return new UserError('invalid_config', `cannot listen on ${where}: permission denied`, {
      hint: 'ports below 1024 need root or CAP_NET_BIND_SERVICE; or choose another port',
      cause: e,
    });
  }
  if (err.code === 'EADDRNOTAVAIL') {
    return new UserError('invalid_config', `cannot listen on ${where}: no such address on this host`, { hint: 'choose an address this host has', cause: e });
  }
  return undefined;
}

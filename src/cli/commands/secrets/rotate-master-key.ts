import { defineCommand, jsonFlag, type FlagSpec } from '../../command.ts';

const FLAGS = {
  'data-dir': { type: 'string', placeholder: 'DIR', description: 'The server\'s data directory (default /var/lib/ward)' },
  'database-url': { type: 'string', placeholder: 'URL', description: 'The server\'s PostgreSQL database, if it uses one' },
  'master-key-file': { type: 'string', placeholder: 'PATH', description: 'The master key file (default <data dir>/master.key)' },
  config: { type: 'string', placeholder: 'FILE', description: 'The server config file, as ward server takes it' },
  json: jsonFlag,
} as const satisfies Record<string, FlagSpec>;

export default defineCommand({
  name: 'rotate-master-key',
  summary: 'Replace the master key (KEK) and re-wrap every data key (operators, server stopped)',
  description: [
    'Runs on the server\'s host, against its data directory or database, not through the API. Stop every',
    'control plane on the database first (running instances keep serving). It writes a new master key,',
    're-wraps every data key under it in one transaction (values are not touched), keeps the old key as',
    '<file>.retired-<id> for backups taken before today, and moves the new one into place. An interrupted',
    'run is finished by running it again. Then copy the new key file to every control plane and start them.',
    'docs/security.md "Rotating the master key" has the whole procedure.',
  ].join('\n'),
  flags: FLAGS,
  examples: ['ward secrets rotate-master-key --data-dir /var/lib/ward', 'ward secrets rotate-master-key --database-url postgres://ward@db/ward --master-key-file /etc/ward/master.key'],
  async run(ctx, { flags }) {
    // Loaded here: only operators run this, and it needs the database drivers.
    const [{ resolveServerConfig }, { openStore }, audit, secrets, core, { newLogger }] = await Promise.all([
      import('../../../config/index.ts'),
      import('../../../store/index.ts'),
      import('../../../audit/index.ts'),
      import('../../../secrets/index.ts'),
      import('../../../core/index.ts'),
      import('../../../server/index.ts'),
    ]);
    const { config: file, json: _json, ...rest } = flags;
    const config = resolveServerConfig({ flags: rest, env: ctx.env, file, cwd: ctx.cwd });
    const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
    try {
      const { key } = await audit.loadOrCreateAuditKey(audit.auditKeyPath(config.dataDir));
      const auditor = new audit.AuditService({ store, clock: core.systemClock, key, logger: newLogger('silent') });
      await auditor.init();
      const r = await secrets.rotateMasterKey(store, config.masterKeyFile, {
        now: () => core.toTimestamp(core.systemClock.now()),
        auditor,
        ctx: { actor: { type: 'system', id: null, label: 'ward secrets rotate-master-key' }, sourceIp: null, requestId: null },
      });
      await auditor.close();
      const out = { from_key_id: r.fromKeyId, to_key_id: r.toKeyId, rewrapped: r.rewrapped, master_key_file: config.masterKeyFile, retired_file: r.retiredFile };
      ctx.out.result(out, () => {
        ctx.out.info(`Master key rotated: ${r.fromKeyId} → ${r.toKeyId}; ${r.rewrapped} data key(s) re-wrapped, no value touched.`);
        ctx.out.info(`The old key is kept in ${r.retiredFile}: keep it with backups taken before now, and delete it when they expire.`);
        ctx.out.info(`Copy ${config.masterKeyFile} to every control plane host of this database, then start them.`);
      });
    } finally {
      await store.close();
    }
  },
});

import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { when, type ApiCertificate } from './shared.ts';

export default defineCommand({
  name: 'list',
  summary: 'List the app\'s certificates with their status and last error',
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward certs list -a patient-portal', 'ward certs list --json'],
  async run(ctx, { app }) {
    const r = await ctx.api.get<{ certificates: ApiCertificate[] }>(apiPath`/v1/apps/${app}/certs`);
    ctx.out.result(r.certificates, () => {
      if (!r.certificates.length) return ctx.out.info(`${app} has no certificates. Add one: ward certs add HOSTNAME -a ${app}`);
      ctx.out.table(r.certificates, [
        { header: 'hostname', value: (c) => c.hostname },
        { header: 'status', value: (c) => c.status },
        { header: 'expires', value: (c) => when(c.not_after) },
        { header: 'renews', value: (c) => when(c.renew_at) },
        { header: 'last error', value: (c) => (c.last_error ? c.last_error.slice(0, 80) : '-') },
      ]);
    });
  },
});

import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { printCertificate, type ApiCertificate } from './shared.ts';

export default defineCommand({
  name: 'show',
  summary: 'Show one certificate: status, expiry, renewal, last attempt and error',
  args: [{ name: 'HOSTNAME', required: true, description: 'The certificate\'s hostname' }],
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward certs show www.example.com -a patient-portal'],
  async run(ctx, { args, app }) {
    const r = await ctx.api.get<{ certificate: ApiCertificate }>(apiPath`/v1/apps/${app}/certs/${args.HOSTNAME.toLowerCase()}`);
    ctx.out.result(r.certificate, () => printCertificate(ctx, r.certificate));
  },
});

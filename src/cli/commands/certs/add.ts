import { UserError } from '../../../core/index.ts';
// routes.ts alone: the edge's index would load its TLS, ACME and proxy code into every `ward` command.
import { normalizeHost } from '../../../edge/routes.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import type { ApiCertificate } from './shared.ts';

export default defineCommand({
  name: 'add',
  summary: 'Get a certificate for a hostname (ACME) and route the name to the app',
  description: 'The edge orders the certificate from the server\'s ACME directory (Let\'s Encrypt by default) and renews it at two thirds of its lifetime. Point the name\'s DNS at the edge first: the CA validates over HTTP (port 80) or TLS-ALPN (port 443). Needs the developer role or higher.',
  args: [{ name: 'HOSTNAME', required: true, description: 'A DNS name, like www.example.com' }],
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward certs add www.example.com -a patient-portal'],
  check({ args }) {
    const n = normalizeHost(args.HOSTNAME);
    if (n === undefined || n.startsWith('[') || !n.includes('.') || /^[\d.]+$/.test(n)) {
      throw new UserError('usage', `"${args.HOSTNAME.slice(0, 80)}" is not a hostname`, { hint: 'give a DNS name like www.example.com, without scheme, port or path' });
    }
  },
  async run(ctx, { args, app }) {
    const r = await ctx.api.post<{ certificate: ApiCertificate }>(apiPath`/v1/apps/${app}/certs`, { hostname: args.HOSTNAME.toLowerCase() });
    ctx.out.result(r.certificate, () => {
      ctx.out.info(`Added ${r.certificate.hostname} to ${app} (${r.certificate.status}). Follow it with: ward certs show ${r.certificate.hostname} -a ${app}`);
    });
  },
});

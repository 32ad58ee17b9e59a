import { parseDuration, UserError } from '../../../core/index.ts';
import type { ApiToken } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';

export default defineCommand({
  name: 'create',
  summary: 'Create an API token (for CI, scripts); the secret is shown once',
  description: [
    'The token acts for you in one org (default: your oldest) and, with --app, on one app only. What it',
    'may do is its scope — read: look; deploy: read, create apps and deploy; admin: everything in the',
    'org — and never more than your role in the org allows at the time it is used. It expires after',
    '--expires (default 30d, at most 365d). Use it with WARD_API_TOKEN. The secret goes to stdout alone.',
  ].join('\n'),
  flags: {
    name: { type: 'string', placeholder: 'NAME', required: true, description: 'What the token is for, like github-actions' },
    scope: { type: 'string', placeholder: 'SCOPE', required: true, choices: ['read', 'deploy', 'admin'], description: 'read, deploy or admin' },
    org: { type: 'string', placeholder: 'ORG', description: 'The org it works in (default: your oldest)' },
    app: { type: 'string', short: 'a', placeholder: 'APP', description: 'Limit it to this one app' },
    expires: { type: 'string', placeholder: 'DURATION', description: 'Lifetime, like 24h or 90d (default 30d, at most 365d)' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: [
    'ward tokens create --name github-actions --scope deploy --org acme --app patient-portal --expires 90d',
    'WARD_API_TOKEN=$(ward tokens create --name nightly --scope read --org acme) ward apps list',
  ],
  check({ flags }) {
    if (flags.expires === undefined) return;
    try {
      parseDuration(flags.expires);
    } catch (e) {
      throw new UserError('usage', `invalid --expires: ${(e as Error).message}`, { hint: 'see ward tokens create --help' });
    }
  },
  async run(ctx, { flags }) {
    const body: Record<string, string> = { name: flags.name, scope: flags.scope };
    if (flags.org) body.org = flags.org;
    if (flags.app) body.app = flags.app;
    if (flags.expires) body.expires_in = flags.expires;
    const r = await ctx.api.post<{ token: ApiToken; secret: string }>('/v1/tokens', body);
    ctx.out.result(r, () => {
      // The secret alone on stdout, so `T=$(ward tokens create …)` works; the explanation on stderr.
      ctx.out.line(r.secret);
      const where = r.token.app ? `app ${r.token.app.name} of org ${r.token.org.name}` : `org ${r.token.org.name}`;
      ctx.out.info(`Token ${r.token.id} (${r.token.name}): ${r.token.scope} in ${where}, until ${r.token.expires_at}.`);
      ctx.out.info('The secret is shown only now. Use it as WARD_API_TOKEN; revoke it with: ward tokens revoke ' + r.token.id);
    });
  },
});

import type { ApiToken } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { formatTime } from '../../output.ts';

/** stateOf says whether a token works: active, revoked or expired. */
function stateOf(t: ApiToken, now: number): string {
  if (t.revoked_at) return 'revoked';
  return Date.parse(t.expires_at) <= now ? 'expired' : 'active';
}

export default defineCommand({
  name: 'list',
  summary: 'List the API tokens you created (never their secrets)',
  flags: { json: jsonFlag },
  requireSession: true,
  async run(ctx) {
    const { tokens } = await ctx.api.get<{ tokens: ApiToken[] }>('/v1/tokens');
    const now = Date.now();
    ctx.out.result(tokens, () => {
      if (!tokens.length) return ctx.out.info('No tokens yet. Create one: ward tokens create --name NAME --scope read');
      ctx.out.table(tokens, [
        { header: 'id', value: (t) => t.id },
        { header: 'name', value: (t) => t.name },
        { header: 'scope', value: (t) => t.scope },
        { header: 'org', value: (t) => t.org.name },
        { header: 'app', value: (t) => t.app?.name ?? '-' },
        { header: 'state', value: (t) => stateOf(t, now) },
        { header: 'created', value: (t) => formatTime(t.created_at) },
        { header: 'expires', value: (t) => formatTime(t.expires_at) },
        { header: 'last used', value: (t) => (t.last_used_at ? formatTime(t.last_used_at) : 'never') },
      ]);
    });
  },
});

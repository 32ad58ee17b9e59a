import type { ApiToken } from '../../api-types.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';

export default defineCommand({
  name: 'revoke',
  summary: 'Revoke an API token at once',
  description: 'Its creator may revoke a token, and so may an owner or admin of its org. `ward tokens list` shows the ids.',
  args: [{ name: 'ID', required: true, description: 'The token id (tok_…)' }],
  flags: { json: jsonFlag },
  requireSession: true,
  examples: ['ward tokens revoke tok_01hx…'],
  async run(ctx, { args }) {
    const { token } = await ctx.api.delete<{ token: ApiToken }>(apiPath`/v1/tokens/${args.ID}`);
    ctx.out.result(token, () => ctx.out.info(`Revoked token ${token.id} (${token.name}); it no longer works.`));
  },
});

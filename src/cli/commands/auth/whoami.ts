import type { WhoamiAnswer } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { formatTime } from '../../output.ts';

export default defineCommand({
  name: 'whoami',
  summary: 'Show who you are logged in as, and your orgs',
  flags: { json: jsonFlag },
  requireSession: true,
  async run(ctx) {
    const t = await ctx.api.target();
    const answer = await ctx.api.get<WhoamiAnswer>('/v1/auth/whoami');
    const credential = t.credential?.source === 'env' ? 'WARD_API_TOKEN' : 'session';
    ctx.out.result({ ...answer, api_url: t.apiUrl, credential }, () => {
      ctx.out.fields([
        ['Email', answer.user.email],
        ['User', answer.user.id],
        ['Since', formatTime(answer.user.created_at)],
        ['API', t.apiUrl],
        ['Credential', credential],
      ]);
      if (answer.orgs.length) {
        ctx.out.line('');
        ctx.out.table(answer.orgs, [
          { header: 'org', value: (o) => o.name },
          { header: 'role', value: (o) => o.role },
          { header: 'id', value: (o) => o.id },
        ]);
      }
    });
  },
});

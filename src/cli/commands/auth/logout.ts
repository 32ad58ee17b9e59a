import { UserError } from '../../../core/index.ts';
import { defineCommand } from '../../command.ts';

export default defineCommand({
  name: 'logout',
  summary: 'Revoke the stored session and forget it',
  description: 'Revokes the session on the server it came from and removes it from WARD_CONFIG_DIR. WARD_API_TOKEN is not affected.',
  async run(ctx) {
    const stored = await ctx.session.read();
    if (!stored) {
      ctx.out.info(ctx.env.WARD_API_TOKEN ? 'No stored session. WARD_API_TOKEN is set; unset it to stop using that token.' : 'You are not logged in.');
      return;
    }
    let revokeFailure: UserError | undefined;
    if (Date.parse(stored.expires_at) > Date.now()) {
      try {
        await ctx.api.post('/v1/auth/logout', undefined, { as: { apiUrl: stored.api_url, token: stored.token } });
      } catch (e) {
        // A session the server no longer accepts is as good as revoked; anything else is reported.
        if (!(e instanceof UserError) || e.code !== 'unauthenticated') {
          revokeFailure = e instanceof UserError ? e : new UserError('internal', String(e), { cause: e });
        }
      }
    }
    // Forget the token locally in every case: the user asked for it to be gone from this machine.
    await ctx.session.clear();
    if (revokeFailure) {
      throw new UserError(revokeFailure.code, `removed the stored session, but the server did not revoke it: ${revokeFailure.message}`, {
        hint: `it stays usable by anyone holding it until ${stored.expires_at}, unless revoked on the server`,
        cause: revokeFailure,
      });
    }
    ctx.out.info(`Logged out ${stored.email} from ${stored.api_url}.`);
  },
});

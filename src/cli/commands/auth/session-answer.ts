import type { ApiSession } from '../../api-types.ts';
import type { Context } from '../../command.ts';

/**
 * saveSession stores the token from a signup or login answer, bound to the server that issued it. It
 * returns that server's URL and the session as it may be shown: everything but the token, which the CLI
 * never prints.
 */
export async function saveSession(ctx: Context, email: string, session: ApiSession): Promise<{ apiUrl: string; shown: Omit<ApiSession, 'token'> }> {
  const { apiUrl } = await ctx.api.target();
  await ctx.session.write({ api_url: apiUrl, token: session.token, email, expires_at: session.expires_at });
  const { token: _token, ...shown } = session;
  return { apiUrl, shown };
}

import { UserError } from '../../../core/index.ts';
import type { ApiOrgWithRole } from '../../api-types.ts';
import type { Context } from '../../command.ts';

/**
 * orgOrDefault is --org, or the org a command that names none works in: the caller's only org, or with
 * several the oldest (as the server's own default for `ward apps create`).
 */
export async function orgOrDefault(ctx: Context, org: string | undefined): Promise<string> {
  if (org) return org;
  const { orgs } = await ctx.api.get<{ orgs: ApiOrgWithRole[] }>('/v1/orgs');
  const first = orgs[0];
  if (!first) throw new UserError('not_found', 'you are not a member of any org', { hint: 'create one: ward orgs create NAME' });
  return first.name;
}

import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { orgOrDefault } from './org.ts';

export default defineCommand({
  name: 'remove',
  summary: 'Remove a WireGuard peer: its tunnel stops reaching the org',
  args: [{ name: 'NAME', required: true, description: 'The peer\'s name (ward wireguard list)' }],
  flags: { org: { type: 'string', placeholder: 'ORG', description: 'The org (default: your only or oldest org)' }, json: jsonFlag },
  requireSession: true,
  async run(ctx, { args, flags }) {
    const org = await orgOrDefault(ctx, flags.org);
    const r = await ctx.api.request<{ peer: { id: string; name: string; address: string } }>('DELETE', apiPath`/v1/orgs/${org}/wireguard/${args.NAME}`);
    ctx.out.result(r.peer, () => ctx.out.info(`Removed WireGuard peer "${r.peer.name}" (${r.peer.address}) from org ${org}.`));
  },
});

import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { formatTime } from '../../output.ts';
import { orgOrDefault } from './org.ts';

interface Peer {
  id: string;
  name: string;
  public_key: string;
  address: string;
  created_at: string;
}

export default defineCommand({
  name: 'list',
  summary: 'List an org\'s WireGuard peers',
  flags: { org: { type: 'string', placeholder: 'ORG', description: 'The org (default: your only or oldest org)' }, json: jsonFlag },
  requireSession: true,
  async run(ctx, { flags }) {
    const org = await orgOrDefault(ctx, flags.org);
    const { peers } = await ctx.api.get<{ peers: Peer[] }>(apiPath`/v1/orgs/${org}/wireguard`);
    ctx.out.result(peers, () => {
      if (!peers.length) return ctx.out.info(`Org ${org} has no WireGuard peers. Add one: ward wireguard create --org ${org}`);
      ctx.out.table(peers, [
        { header: 'name', value: (p) => p.name },
        { header: 'address', value: (p) => p.address },
        { header: 'public key', value: (p) => p.public_key },
        { header: 'created', value: (p) => formatTime(p.created_at) },
      ]);
    });
  },
});

import { open, rm, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { generateWireGuardKeyPair, nameProblem, UserError, wgQuickConfig } from '../../../core/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { orgOrDefault } from './org.ts';

interface Created {
  peer: { id: string; name: string; public_key: string; address: string; created_at: string };
  tunnel: { org: string; address: string; dns: string; allowed_ips: string[]; gateway_public_key: string; gateway_endpoint: string };
}

/** defaultName is this machine's name as a DNS label, or "laptop". */
function defaultName(): string {
  const n = hostname().toLowerCase().split('.')[0]!.replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return nameProblem(n) === undefined ? n : 'laptop';
}

export default defineCommand({
  name: 'create',
  summary: 'Put this machine on an org\'s private network: a wg-quick config for a new WireGuard peer',
  description: [
    'The key pair is made here; only the public key is sent. The private key is written into the',
    'config (to --output FILE, mode 0600, or to stdout) and nowhere else: keep it private.',
    'The tunnel carries only the org\'s prefix; DNS names under .internal resolve through it.',
  ].join('\n'),
  flags: {
    org: { type: 'string', placeholder: 'ORG', description: 'The org (default: your only or oldest org)' },
    name: { type: 'string', placeholder: 'NAME', description: 'The peer\'s name (default: this machine\'s name)' },
    output: { type: 'string', short: 'o', placeholder: 'FILE', description: 'Write the config to FILE (0600, never overwritten) instead of stdout' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward wireguard create --org acme --name alice-laptop --output acme.conf', 'sudo wg-quick up ./acme.conf'],
  check({ flags }) {
    if (flags.name !== undefined && nameProblem(flags.name)) throw new UserError('usage', `invalid --name "${flags.name}": ${nameProblem(flags.name)}`);
    if (flags.json && !flags.output) throw new UserError('usage', '--json needs --output FILE: the config (with its private key) goes to the file');
  },
  async run(ctx, { flags }) {
    const org = await orgOrDefault(ctx, flags.org);
    const name = flags.name ?? defaultName();
    const keys = generateWireGuardKeyPair();
    const out = flags.output ? resolve(ctx.cwd, flags.output) : undefined;
    // The file first (0600, never an existing one): a peer is only made when its key has somewhere to go.
    let handle: FileHandle | undefined;
    if (out) {
      try {
        handle = await open(out, 'wx', 0o600);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new UserError('usage', `cannot write ${out}: ${code === 'EEXIST' ? 'the file exists' : (e as Error).message}`, { hint: 'choose another --output file' });
      }
    }
    let r: Created;
    try {
      r = await ctx.api.request<Created>('POST', apiPath`/v1/orgs/${org}/wireguard`, { body: { name, public_key: keys.publicKey } });
    } catch (e) {
      await handle?.close();
      if (out) await rm(out, { force: true });
      throw e;
    }
    const t = r.tunnel;
    const config = wgQuickConfig({
      privateKey: keys.privateKey,
      name: r.peer.name,
      org: t.org,
      address: t.address,
      dns: t.dns,
      allowedIPs: t.allowed_ips,
      gatewayPublicKey: t.gateway_public_key,
      gatewayEndpoint: t.gateway_endpoint,
    });
    if (!handle) {
      ctx.out.line(config.trimEnd());
      ctx.out.info(`Peer "${r.peer.name}" added to org ${t.org} at ${t.address}. Save the config above (it holds the private key) and run: wg-quick up FILE`);
      return;
    }
    try {
      await handle.writeFile(config);
    } finally {
      await handle.close();
    }
    ctx.out.result({ peer: r.peer, org: t.org, output: out }, () => {
      ctx.out.info(`Peer "${r.peer.name}" added to org ${t.org} at ${t.address}.`);
      ctx.out.info(`Wrote ${out} (mode 0600). Bring it up with: sudo wg-quick up ${out}`);
    });
  },
});

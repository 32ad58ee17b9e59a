import { readFile } from 'node:fs/promises';
import { UserError } from '../../../core/index.ts';
import type { AuditVerifyAnswer } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';

export default defineCommand({
  name: 'verify',
  summary: 'Check the audit log for any edit, deletion, insertion or reordering',
  description: [
    'Exits 0 when the log is intact; otherwise exits 1 and names the first bad entry (chain, seq, id, reason).',
    'With --file it checks an export made by `ward audit export` offline, without a server or a login; add',
    '--public-key with the server\'s public key (obtained separately) to also rule out a re-signed file.',
  ].join('\n'),
  flags: {
    org: { type: 'string', placeholder: 'ORG', description: 'The org (default: your oldest org); not with --file' },
    file: { type: 'string', placeholder: 'EXPORT.jsonl', description: 'Verify this JSONL export offline instead of asking the server' },
    'public-key': { type: 'string', multiple: true, placeholder: 'KEY.pem', description: 'With --file: trust only this public key' },
    json: jsonFlag,
  },
  examples: ['ward audit verify', 'ward audit verify --file acme-audit.jsonl --public-key ward-audit.pub.pem'],
  check({ flags }) {
    if (flags.file !== undefined && flags.org !== undefined) {
      throw new UserError('usage', '--org and --file do not go together: an export holds the org it was made for', { hint: 'ward audit verify --file EXPORT.jsonl' });
    }
    if (flags.file === undefined && flags['public-key'].length > 0) {
      throw new UserError('usage', '--public-key goes with --file', { hint: 'ward audit verify --file EXPORT.jsonl --public-key KEY.pem' });
    }
  },
  async run(ctx, { flags }) {
    // Loaded here, not at the top: only this command needs the verifier.
    const { describeVerify, publicKeyFromPem, verifyExport } = await import('../../../audit/index.ts');
    if (flags.file !== undefined) {
      const text = await readText(flags.file, 'the export');
      const trustedKeys = [];
      for (const f of flags['public-key']) {
        try {
          trustedKeys.push(publicKeyFromPem(await readText(f, 'the public key')));
        } catch (e) {
          if (e instanceof UserError) throw e;
          throw new UserError('usage', `${f} is not a PEM public key`, { hint: 'pass the server\'s public key, as printed in the export header or audit_keys' });
        }
      }
      const r = verifyExport(text, { trustedKeys });
      const { header, ...rest } = r;
      ctx.out.result({ file: flags.file, org: header?.org ?? null, exported_at: header?.exported_at ?? null, ...rest }, () => report(ctx, describeVerify(r)));
      return r.ok ? 0 : 1;
    }
    const q = flags.org ? `?${new URLSearchParams({ org: flags.org })}` : '';
    const r = await ctx.api.post<AuditVerifyAnswer>(`/v1/audit/verify${q}`);
    ctx.out.result(r, () => report(ctx, describeVerify({ ...r, keyIds: r.key_ids, keysFrom: 'trusted' }).map((l, i) => (i === 0 ? `org ${r.org.name}: ${l}` : l))));
    return r.ok ? 0 : 1;
  },
});

// The verdict is the data: it goes to stdout either way, so `ward audit verify | tee` keeps it.
function report(ctx: { out: { line(text: string): void } }, lines: string[]): void {
  for (const l of lines) ctx.out.line(l);
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new UserError('usage', `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

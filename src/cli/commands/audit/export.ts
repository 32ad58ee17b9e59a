import { open, rename, rm } from 'node:fs/promises';
import { UserError } from '../../../core/index.ts';
import { defineCommand } from '../../command.ts';

export default defineCommand({
  name: 'export',
  summary: 'Export the audit log for an auditor',
  description: [
    'JSONL holds the entries, the signed checkpoints and the public keys: `ward audit verify --file` or',
    'scripts/audit-verify.ts checks it offline. CSV holds the entries only, for spreadsheets; it cannot be verified.',
    'The export is recorded in the log itself (audit.export). Files are written mode 0600: the log names people and addresses.',
  ].join('\n'),
  flags: {
    format: { type: 'string', placeholder: 'FORMAT', choices: ['jsonl', 'csv'], description: 'jsonl (verifiable) or csv (spreadsheets); default jsonl' },
    org: { type: 'string', placeholder: 'ORG', description: 'The org (default: your oldest org)' },
    since: { type: 'string', placeholder: 'WHEN', description: 'Only entries from then on: a duration back from now (7d) or a timestamp' },
    output: { type: 'string', short: 'o', placeholder: 'FILE', description: 'Write to FILE instead of stdout' },
  },
  requireSession: true,
  examples: ['ward audit export --format jsonl --output acme-audit.jsonl', 'ward audit export --format csv --since 30d > audit.csv'],
  async run(ctx, { flags }) {
    const q = new URLSearchParams({ format: flags.format ?? 'jsonl' });
    if (flags.org) q.set('org', flags.org);
    if (flags.since) q.set('since', flags.since);
    const path = `/v1/audit/export?${q}`;
    if (flags.output === undefined) {
      const decoder = new TextDecoder();
      await ctx.api.download(path, (chunk) => ctx.io.stdout.write(decoder.decode(chunk, { stream: true })));
      ctx.io.stdout.write(decoder.decode());
      return;
    }
    // Written beside the target and renamed when complete: a broken-off download never looks like an export.
    const tmp = `${flags.output}.${process.pid}.partial`;
    const file = await open(tmp, 'wx', 0o600).catch((e: NodeJS.ErrnoException) => {
      throw new UserError('usage', `cannot write ${flags.output}: ${e.message}`);
    });
    let bytes = 0;
    try {
      await ctx.api.download(path, async (chunk) => {
        await file.write(chunk);
        bytes += chunk.length;
      });
      await file.close();
      await rename(tmp, flags.output);
    } catch (e) {
      await file.close().catch(() => {});
      await rm(tmp, { force: true });
      throw e;
    }
    ctx.out.info(`Wrote ${flags.output} (${bytes} bytes). Verify it: ward audit verify --file ${flags.output}`);
  },
});

import { UserError } from '../../../core/index.ts';
import type { ApiAuditEntry, AuditListAnswer } from '../../api-types.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { formatTime } from '../../output.ts';

const PAGE = 1000;

export default defineCommand({
  name: 'list',
  summary: 'List audit log entries, oldest first',
  description: 'Shows the entries of one org since a time (default: the last 24 hours). With --json, prints every field of each entry, hashes included.',
  flags: {
    org: { type: 'string', placeholder: 'ORG', description: 'The org (default: your oldest org)' },
    since: { type: 'string', placeholder: 'WHEN', description: 'A duration back from now (30m, 24h, 7d) or a timestamp; default 24h' },
    limit: { type: 'string', placeholder: 'N', description: 'Show at most N entries' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward audit list --since 1h', 'ward audit list --org acme --since 2026-01-01T00:00:00Z --json'],
  check({ flags }) {
    if (flags.limit !== undefined && !/^[1-9]\d{0,6}$/.test(flags.limit)) {
      throw new UserError('usage', `--limit must be a positive whole number, not ${JSON.stringify(flags.limit)}`);
    }
  },
  async run(ctx, { flags }) {
    const max = flags.limit === undefined ? Infinity : Number(flags.limit);
    const entries: ApiAuditEntry[] = [];
    let after: number | null = null;
    let orgName = '';
    // Page through with the server's cursor until the end or --limit.
    do {
      const q = new URLSearchParams({ since: flags.since ?? '24h', limit: String(Math.min(PAGE, max - entries.length)) });
      if (flags.org) q.set('org', flags.org);
      if (after !== null) q.set('after', String(after));
      const page: AuditListAnswer = await ctx.api.get<AuditListAnswer>(`/v1/audit?${q}`);
      orgName = page.org.name;
      entries.push(...page.entries);
      after = page.next_after;
    } while (after !== null && entries.length < max);
    if (entries.length > max) entries.length = max;

    ctx.out.result(entries, () => {
      if (!entries.length) return ctx.out.info(`No audit entries for org ${orgName} since ${flags.since ?? '24h'}.`);
      ctx.out.table(entries, [
        { header: 'seq', value: (e) => String(e.seq) },
        { header: 'time', value: (e) => formatTime(e.at) },
        { header: 'actor', value: (e) => e.actor_label ?? e.actor_id ?? e.actor_type },
        { header: 'action', value: (e) => e.action },
        { header: 'target', value: (e) => e.target ?? '' },
        { header: 'outcome', value: (e) => e.outcome },
        { header: 'source', value: (e) => e.source_ip ?? '' },
      ]);
    });
  },
});

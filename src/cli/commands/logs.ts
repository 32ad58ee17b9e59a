import { parseDuration, UserError } from '../../core/index.ts';
import { apiPath } from '../client.ts';
import { defineCommand, jsonFlag } from '../command.ts';

/** ApiLogLine is one journal line as the API sends it. */
export interface ApiLogLine {
  time: string;
  instance: string;
  stream: 'stdout' | 'stderr' | 'ward' | 'edge';
  message: string;
}

/** formatLogLine is the human form: time, instance, stream (when not stdout), message. */
export function formatLogLine(l: ApiLogLine): string {
  const tag = l.stream === 'stdout' ? '' : ` [${l.stream}]`;
  return `${l.time} ${l.instance}${tag} ${l.message}`;
}

export default defineCommand({
  name: 'logs',
  summary: 'Show the app\'s logs, or follow them',
  description: [
    'Prints the instances\' output (stdout, stderr), the agent\'s own lines about them ([ward]) and the edge\'s',
    'access log of the requests each answered ([edge], one JSON object per request), oldest first.',
    'With -f it keeps printing new lines until Ctrl-C. With --json each line is a JSON object (one per line when following).',
  ].join('\n'),
  flags: {
    follow: { type: 'boolean', short: 'f', description: 'Keep printing new lines as they come' },
    instance: { type: 'string', placeholder: 'ID', description: 'Only this instance (ins_…)' },
    since: { type: 'string', placeholder: 'DURATION', description: 'Only lines from this long ago (10m, 2h) or since a time (ISO-8601)' },
    limit: { type: 'string', placeholder: 'N', description: 'At most the last N lines before following (default 500)' },
    json: jsonFlag,
  },
  requireSession: true,
  requireApp: true,
  examples: ['ward logs', 'ward logs -f', 'ward logs --since 10m --instance ins_01jq…', 'ward logs --json | jq .message'],
  check({ flags }) {
    if (flags.since !== undefined && !/^\d{4}-\d{2}-\d{2}T/.test(flags.since)) {
      try {
        parseDuration(flags.since);
      } catch {
        throw new UserError('usage', `--since ${JSON.stringify(flags.since)} is not a duration or a time`, { hint: 'like --since 10m, or --since 2026-01-31T12:00:00Z' });
      }
    }
    if (flags.limit !== undefined && !/^[1-9]\d{0,4}$/.test(flags.limit)) throw new UserError('usage', '--limit must be a whole number from 1 to 10000');
  },
  async run(ctx, { app, flags }) {
    const q = new URLSearchParams();
    if (flags.instance) q.set('instance', flags.instance);
    if (flags.since) q.set('since', flags.since);
    if (flags.limit) q.set('limit', flags.limit);
    if (!flags.follow) {
      const r = await ctx.api.get<{ logs: ApiLogLine[] }>(`${apiPath`/v1/apps/${app}/logs`}?${q}`);
      ctx.out.result(r.logs, () => {
        for (const l of r.logs) ctx.out.line(formatLogLine(l));
        if (r.logs.length === 0) ctx.out.info('No log lines.');
      });
      return;
    }
    q.set('follow', '1');
    const abort = new AbortController();
    void ctx.untilSignal().then(() => abort.abort());
    // Streaming: one line per log line on stdout, JSON or text, as it arrives.
    await ctx.api.lines(`${apiPath`/v1/apps/${app}/logs`}?${q}`, (v) => {
      const l = v as ApiLogLine;
      ctx.io.stdout.write((flags.json ? JSON.stringify(l) : formatLogLine(l)) + '\n');
    }, abort.signal);
  },
});

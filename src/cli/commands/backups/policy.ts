import { UserError } from '../../../core/index.ts';
import { cronProblem } from '../../../backups/cron.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';

interface ApiPolicy {
  volume: string;
  schedule: string;
  retention: { daily: number; weekly: number; monthly: number; yearly: number };
  next_run_at: string | null;
}

const ACTIONS = ['show', 'set'] as const;
const KEEPS = ['keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly'] as const;

export default defineCommand({
  name: 'policy',
  summary: 'Show or set a volume\'s backup schedule (cron, UTC) and retention',
  description: [
    'Default: daily at 03:00 UTC ("0 3 * * *"), keeping 7 daily, 4 weekly, 12 monthly and 6 yearly snapshots.',
    'Retention counts back from the newest snapshot and runs (restic forget --prune) after each backup.',
    'set changes what you give and keeps the rest. Needs the developer role or higher.',
  ].join('\n'),
  args: [
    { name: 'ACTION', required: true, description: `One of ${ACTIONS.join(', ')}` },
    { name: 'VOLUME', required: true, description: 'The volume' },
  ],
  flags: {
    schedule: { type: 'string', placeholder: 'CRON', description: 'Five cron fields in UTC, or @daily, @hourly, @weekly…' },
    'keep-daily': { type: 'string', placeholder: 'N', description: 'Daily snapshots to keep' },
    'keep-weekly': { type: 'string', placeholder: 'N', description: 'Weekly snapshots to keep' },
    'keep-monthly': { type: 'string', placeholder: 'N', description: 'Monthly snapshots to keep' },
    'keep-yearly': { type: 'string', placeholder: 'N', description: 'Yearly snapshots to keep' },
    json: jsonFlag,
  },
  requireSession: true,
  requireApp: true,
  examples: ['ward backups policy show pgdata -a patient-portal', 'ward backups policy set pgdata --schedule "30 2 * * *" --keep-daily 14'],
  check({ args, flags }) {
    if (!(ACTIONS as readonly string[]).includes(args.ACTION)) throw new UserError('usage', `unknown action "${args.ACTION}"; use one of ${ACTIONS.join(', ')}`);
    const given = flags.schedule !== undefined || KEEPS.some((k) => flags[k] !== undefined);
    if (args.ACTION === 'show' && given) throw new UserError('usage', 'show takes no --schedule or --keep-*');
    if (args.ACTION === 'set' && !given) throw new UserError('usage', 'set needs --schedule or a --keep-* flag');
    if (flags.schedule !== undefined && cronProblem(flags.schedule)) throw new UserError('usage', `invalid --schedule: ${cronProblem(flags.schedule)}`, { hint: '"30 2 * * *" is 02:30 UTC every day' });
    for (const k of KEEPS) if (flags[k] !== undefined && !/^\d{1,5}$/.test(flags[k]!)) throw new UserError('usage', `--${k} must be a whole number`);
  },
  async run(ctx, { args, flags, app }) {
    const path = apiPath`/v1/apps/${app}/volumes/${args.VOLUME}/backups/policy`;
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    const r = args.ACTION === 'set'
      ? await ctx.api.request<{ policy: ApiPolicy }>('PUT', path, {
          body: {
            ...(flags.schedule !== undefined ? { schedule: flags.schedule } : {}),
            ...Object.fromEntries(KEEPS.filter((k) => flags[k] !== undefined).map((k) => [k.replace('-', '_'), num(flags[k])])),
          },
        })
      : await ctx.api.get<{ policy: ApiPolicy }>(path);
    const p = r.policy;
    ctx.out.result(p, () => {
      ctx.out.fields([
        ['volume', p.volume],
        ['schedule', `${p.schedule} (UTC)`],
        ['keep', `${p.retention.daily} daily, ${p.retention.weekly} weekly, ${p.retention.monthly} monthly, ${p.retention.yearly} yearly`],
        ['next run', p.next_run_at ?? '(set by the scheduler once the org has a target)'],
      ]);
    });
  },
});

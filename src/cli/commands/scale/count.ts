import { UserError } from '../../../core/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { printScale, type ApiScale } from './fields.ts';

export default defineCommand({
  name: 'count',
  summary: 'Set how many instances of the current release run',
  description: [
    'More instances: new ones of the current release are placed, spread over the hosts. Fewer: the newest',
    'extras stop (the edge drains them first). With --region, COUNT is for that region. Never below',
    '[http_service] min_instances; not during a deploy. The next deploy keeps the count.',
  ].join('\n'),
  args: [{ name: 'COUNT', required: true, description: 'How many instances (0 to 100)' }],
  flags: { region: { type: 'string', placeholder: 'REGION', description: 'Set the count of one region only' }, json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward scale count 3', 'ward scale count 2 --region fra -a patient-portal'],
  check({ args }) {
    if (!/^\d{1,6}$/.test(args.COUNT ?? '')) throw new UserError('usage', `${JSON.stringify(args.COUNT)} is not a number of instances`, { hint: 'ward scale count 3' });
  },
  async run(ctx, { app, args, flags }) {
    const body: Record<string, unknown> = { count: Number(args.COUNT) };
    if (flags.region) body.region = flags.region;
    const s = await ctx.api.post<ApiScale>(apiPath`/v1/apps/${app}/scale`, body);
    const started = s.started?.length ?? 0;
    const stopped = s.stopped?.length ?? 0;
    ctx.out.info(started > 0 ? `Starting ${started} instance${started === 1 ? '' : 's'} of ${app}.` : stopped > 0 ? `Stopping ${stopped} instance${stopped === 1 ? '' : 's'} of ${app}.` : `${app} already runs ${s.count}.`);
    ctx.out.result(s, () => printScale(ctx.out, s));
  },
});

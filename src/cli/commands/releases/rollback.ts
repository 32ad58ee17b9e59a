import { UserError } from '../../../core/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { followRelease, printInstances, type ApiInstance, type ApiRelease } from '../deploy-fields.ts';

export default defineCommand({
  name: 'rollback',
  summary: 'Deploy an earlier release again, as a new release',
  description: [
    'Makes release N+1 from release VERSION\'s image digest and config, with the app\'s current secrets',
    '(a rollback undoes code, not a secret rotation), and deploys it with the strategy the app\'s current',
    'release uses. Only a release that succeeded can be rolled back to, and not while a deploy runs.',
    'Follows the deploy like ward deploy (--detach returns at once).',
  ].join('\n'),
  args: [{ name: 'VERSION', required: true, description: 'The release to go back to: 3 or v3 (ward releases lists them)' }],
  flags: { detach: { type: 'boolean', description: 'Return once the release is made, without waiting for it' }, json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward releases rollback 3', 'ward releases rollback v3 -a patient-portal --detach --json'],
  check({ args }) {
    if (!/^v?\d{1,9}$/.test(args.VERSION ?? '')) throw new UserError('usage', `${JSON.stringify(args.VERSION)} is not a release version`, { hint: 'pass a version like 3 or v3: ward releases lists them' });
  },
  async run(ctx, { app, args, flags }) {
    const started = Date.now();
    const version = Number(args.VERSION!.replace(/^v/, ''));
    const made = await ctx.api.post<{ release: ApiRelease; instances: ApiInstance[] }>(apiPath`/v1/apps/${app}/releases/${String(version)}/rollback`, {});
    const n = made.release.target_count ?? made.instances.length;
    ctx.out.info(`--> Release v${made.release.version} created from v${version} (${made.release.strategy}): starting ${n} instance${n === 1 ? '' : 's'}`);
    if (flags.detach) {
      ctx.out.result({ app, release: made.release, instances: made.instances }, () => printInstances(ctx.out, made.instances));
      return;
    }
    await followRelease(ctx, app, made, { started, waitMs: 6 * 60_000 });
  },
});

import { UserError } from '../../../core/index.ts';
import { secretNameProblem } from '../../../secrets/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { printChange, stageFlag, type ApiSecretChange } from './shared.ts';

export default defineCommand({
  name: 'unset',
  summary: 'Remove secrets; the app restarts without them unless --stage',
  description: 'Every NAME must exist, or nothing changes. Earlier releases keep the values they pinned, so a rollback still gets them.',
  args: [{ name: 'NAME', required: true, variadic: true, description: 'A secret to remove' }],
  flags: { stage: stageFlag, json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward secrets unset OLD_API_KEY -a patient-portal'],
  check({ args }) {
    for (const [i, n] of args.NAME.entries()) {
      const problem = secretNameProblem(n);
      // Not quoted: an invalid name may be a value typed in the wrong place.
      if (problem) throw new UserError('invalid_secret', `invalid secret name in argument ${i + 1}: ${problem}`, { hint: 'names look like DATABASE_URL' });
    }
  },
  async run(ctx, { args, flags, app }) {
    const r = await ctx.api.post<ApiSecretChange>(apiPath`/v1/apps/${app}/secrets/unset`, { names: args.NAME, stage: flags.stage });
    printChange(ctx, 'Removed', r);
  },
});

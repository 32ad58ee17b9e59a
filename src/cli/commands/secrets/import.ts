import { UserError } from '../../../core/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { readAll } from '../../password.ts';
import { printChange, stageFlag, type ApiSecretChange } from './shared.ts';

export default defineCommand({
  name: 'import',
  summary: 'Set every variable of a .env file (from stdin) as secrets',
  description: [
    'Reads KEY=VALUE lines from stdin (export prefixes, # comments, single- and double-quoted values,',
    'multi-line double-quoted values), as docker compose and dotenv write them, and sets them all as one',
    'new secrets version. Errors name the line, never its text.',
  ].join('\n'),
  flags: { stage: stageFlag, json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward secrets import -a patient-portal < .env', 'ward secrets import --stage < production.env'],
  async run(ctx, { flags, app }) {
    if (ctx.io.stdin.isTTY) throw new UserError('usage', 'ward secrets import reads a .env file from stdin, which is a terminal', { hint: 'ward secrets import < .env' });
    const dotenv = await readAll(ctx.io.stdin);
    if (dotenv.trim() === '') throw new UserError('usage', 'stdin held nothing to import', { hint: 'ward secrets import < .env' });
    const r = await ctx.api.post<ApiSecretChange>(apiPath`/v1/apps/${app}/secrets/import`, { dotenv, stage: flags.stage });
    printChange(ctx, 'Imported', r);
  },
});

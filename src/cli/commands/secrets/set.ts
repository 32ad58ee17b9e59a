import { UserError } from '../../../core/index.ts';
import { secretNameProblem } from '../../../secrets/index.ts';
import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { readAll, stripOneNewline } from '../../password.ts';
import { printChange, stageFlag, type ApiSecretChange } from './shared.ts';

/**
 * splitAssignment splits NAME=VALUE at the first "=". Errors name the argument's position, never its
 * text: a value typed without its NAME= must not be echoed to a terminal or a CI log.
 */
function splitAssignment(arg: string, i: number): { name: string; value: string } {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new UserError('usage', `argument ${i + 1} is not NAME=VALUE`, { hint: 'ward secrets set NAME=VALUE …, or NAME=- to read the value from stdin' });
  const name = arg.slice(0, eq);
  const problem = secretNameProblem(name);
  // Not quoted: an invalid name may be a value typed in the wrong place.
  if (problem) throw new UserError('invalid_secret', `invalid secret name in argument ${i + 1}: ${problem}`, { hint: 'names look like DATABASE_URL' });
  return { name, value: arg.slice(eq + 1) };
}

export default defineCommand({
  name: 'set',
  summary: 'Set secrets; the app restarts onto them unless --stage',
  description: [
    'Each NAME=VALUE sets one secret; NAME=- reads that value from stdin (one trailing newline removed),',
    'which keeps it out of your shell history and the process list. Values are encrypted at once, can',
    'never be read back (ward secrets list shows a digest), and reach only the app\'s instances, as',
    'environment variables. Without --stage the app\'s instances are replaced one at a time, each behind',
    'its health checks, so they run with the new values; with --stage the next deploy applies them.',
  ].join('\n'),
  args: [{ name: 'NAME=VALUE', required: true, variadic: true, description: 'A secret to set; NAME=- reads the value from stdin' }],
  flags: { stage: stageFlag, json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: [
    'ward secrets set DATABASE_URL=postgres://… -a patient-portal',
    'ward secrets set TLS_KEY=- < key.pem',
    'ward secrets set API_KEY=x SMTP_PASSWORD=y --stage',
  ],
  check({ args }) {
    const pairs = args['NAME=VALUE'].map(splitAssignment);
    if (pairs.filter((p) => p.value === '-').length > 1) throw new UserError('usage', 'only one value can come from stdin (NAME=-)');
    const names = pairs.map((p) => p.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new UserError('usage', `${dup} is given twice`);
  },
  async run(ctx, { args, flags, app }) {
    const values: Record<string, string> = {};
    for (const [i, arg] of args['NAME=VALUE'].entries()) {
      const { name, value } = splitAssignment(arg, i);
      if (value === '-') {
        if (ctx.io.stdin.isTTY) throw new UserError('usage', `${name}=- reads the value from stdin, which is a terminal`, { hint: `pipe it in: ward secrets set ${name}=- < file` });
        values[name] = stripOneNewline(await readAll(ctx.io.stdin));
      } else values[name] = value;
    }
    const r = await ctx.api.post<ApiSecretChange>(apiPath`/v1/apps/${app}/secrets`, { values, stage: flags.stage });
    printChange(ctx, 'Set', r);
  },
});

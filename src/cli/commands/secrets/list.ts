import { apiPath } from '../../client.ts';
import { defineCommand, jsonFlag } from '../../command.ts';
import { formatTime } from '../../output.ts';

interface ApiSecretsListing {
  app: { id: string; name: string };
  version: number;
  secrets: Array<{ name: string; digest: string; version: number; created_at: string }>;
}

export default defineCommand({
  name: 'list',
  summary: 'List the app\'s secrets: names and digests, never values',
  description: 'The digest is a keyed hash of the value (HMAC-SHA256 with a key of the app\'s own): it changes when the value does, and equal values of one app have equal digests.',
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward secrets list -a patient-portal', 'ward secrets list --json'],
  async run(ctx, { app }) {
    const r = await ctx.api.get<ApiSecretsListing>(apiPath`/v1/apps/${app}/secrets`);
    ctx.out.result(r.secrets, () => {
      if (!r.secrets.length) return ctx.out.info(`${r.app.name} has no secrets. Set one: ward secrets set NAME=VALUE -a ${r.app.name}`);
      ctx.out.table(r.secrets, [
        { header: 'name', value: (s) => s.name },
        { header: 'digest', value: (s) => s.digest },
        { header: 'version', value: (s) => String(s.version) },
        { header: 'created', value: (s) => formatTime(s.created_at) },
      ]);
      ctx.out.info(`Secrets version ${r.version}.`);
    });
  },
});

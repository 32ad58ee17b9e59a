import type { ApiApp } from '../api-types.ts';
import { apiPath } from '../client.ts';
import { defineCommand, jsonFlag } from '../command.ts';
import { printInstances, type ApiInstance, type ApiRelease } from './deploy-fields.ts';

export default defineCommand({
  name: 'status',
  summary: 'Show the app\'s current release and its instances',
  description: 'Shows the current release (and, while a deploy runs, its strategy and progress: "2/3 replaced"), then the instances that run or should: id, release, region, host, state, health, restarts and private addresses.',
  flags: { json: jsonFlag },
  requireSession: true,
  requireApp: true,
  examples: ['ward status', 'ward status -a patient-portal --json'],
  async run(ctx, { app }) {
    const st = await ctx.api.get<{ app: ApiApp; release: ApiRelease | null; instances: ApiInstance[] }>(apiPath`/v1/apps/${app}/status`);
    ctx.out.result(st, () => {
      ctx.out.fields([
        ['App', `${st.app.name} (org ${st.app.org.name})`],
        ['Release', st.release ? `v${st.release.version} ${st.release.status}${st.release.reason ? `: ${st.release.reason.split('\n')[0]}` : ''}` : 'none yet'],
        ['Deploy', st.release?.status === 'running' ? `${st.release.strategy}, ${st.release.progress ?? 'starting'}` : undefined],
        ['Image', st.release ? `${st.release.image}${st.release.image === st.release.digest ? '' : ` (${st.release.digest.slice(0, 19)})`}` : undefined],
      ]);
      ctx.out.line('');
      printInstances(ctx.out, st.instances);
    });
  },
});

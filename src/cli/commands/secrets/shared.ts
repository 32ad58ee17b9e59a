import type { Context } from '../../command.ts';

/** ApiSecretChange is the answer of every secrets change (docs/api.md "Secrets"). */
export interface ApiSecretChange {
  app: { id: string; name: string };
  version: number;
  changed: string[];
  unchanged: string[];
  staged: boolean;
  rollout: { status: 'started' | 'staged' | 'none' | 'deferred'; release?: number; instances: number; message: string };
}

/** stageFlag is `--stage`: store only, let the next deploy apply the change. */
export const stageFlag = { type: 'boolean', description: 'Store only; do not restart the app (the next deploy applies it)' } as const;

/** printChange tells what a change did: never a value, only names, the version and the rollout. */
export function printChange(ctx: Context, verb: string, r: ApiSecretChange): void {
  ctx.out.result(r, () => {
    if (r.changed.length === 0) {
      ctx.out.info(`Nothing changed: ${r.unchanged.join(', ')} already had ${r.unchanged.length === 1 ? 'that value' : 'those values'} (secrets version ${r.version}).`);
      return;
    }
    ctx.out.info(`${verb} ${r.changed.join(', ')} on ${r.app.name}: secrets version ${r.version}.`);
    if (r.unchanged.length) ctx.out.info(`Unchanged (same value): ${r.unchanged.join(', ')}.`);
    ctx.out.info(r.rollout.status === 'started' ? `Rolling ${r.rollout.instances} instance(s) onto it, one at a time: ${r.rollout.message}` : r.rollout.message);
  });
}

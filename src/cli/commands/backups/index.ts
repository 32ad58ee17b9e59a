import type { Group } from '../../command.ts';
import list from './list.ts';
import policy from './policy.ts';
import restore from './restore.ts';
import run from './run.ts';
import target from './target.ts';
import verify from './verify.ts';

export default {
  name: 'backups',
  summary: 'Encrypted off-site backups of volumes (restic): run, list, restore, verify, target, policy',
  description: 'Each org backs up to one restic repository (ward backups target set), encrypted with a key only the server holds. Volumes are backed up on a schedule (daily by default) and drilled weekly; every failure is recorded, audited and counted in /metrics. docs/backups.md has the details.',
  commands: [list, run, restore, verify, target, policy],
  default: 'list',
} satisfies Group;

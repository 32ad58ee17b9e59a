import type { Group } from '../../command.ts';
import create from './create.ts';
import list from './list.ts';
import revoke from './revoke.ts';

export default {
  name: 'tokens',
  summary: 'Create, list and revoke API tokens for scripts and CI (WARD_API_TOKEN)',
  commands: [create, list, revoke],
} satisfies Group;

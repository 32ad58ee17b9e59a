import type { Group } from '../../command.ts';
import create from './create.ts';
import destroy from './destroy.ts';
import list from './list.ts';
import show from './show.ts';

export default {
  name: 'apps',
  summary: 'Create, list, show and destroy apps',
  commands: [create, list, show, destroy],
} satisfies Group;

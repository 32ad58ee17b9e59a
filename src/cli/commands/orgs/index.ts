import type { Group } from '../../command.ts';
import create from './create.ts';
import invite from './invite.ts';
import list from './list.ts';
import show from './show.ts';

export default {
  name: 'orgs',
  summary: 'Create and inspect orgs, and invite people into them',
  commands: [create, list, show, invite],
} satisfies Group;

import type { Group } from '../../command.ts';
import create from './create.ts';
import invite from './invite.ts';
import list from './list.ts';
import members from './members.ts';
import network from './network.ts';
import policy from './policy.ts';
import show from './show.ts';

export default {
  name: 'orgs',
  summary: 'Create and inspect orgs, invite people, manage members, the security policy and the network',
  commands: [create, list, show, invite, members, policy, network],
} satisfies Group;

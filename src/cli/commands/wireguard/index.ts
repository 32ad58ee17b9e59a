import type { Group } from '../../command.ts';
import create from './create.ts';
import list from './list.ts';
import remove from './remove.ts';

export default {
  name: 'wireguard',
  summary: 'Reach an org\'s private network from your machine over WireGuard',
  commands: [create, list, remove],
} satisfies Group;

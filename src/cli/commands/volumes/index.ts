import type { Group } from '../../command.ts';
import create from './create.ts';
import destroy from './destroy.ts';
import list from './list.ts';
import show from './show.ts';

export default {
  name: 'volumes',
  summary: 'Encrypted volumes: persistent storage for an app, on one host',
  commands: [create, list, show, destroy],
} satisfies Group;

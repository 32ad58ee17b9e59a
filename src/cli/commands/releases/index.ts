import type { Group } from '../../command.ts';
import list from './list.ts';

export default {
  name: 'releases',
  summary: 'List an app\'s releases',
  description: 'Each deploy makes a release: its image digest, config, secrets version, strategy, who made it and how it went.',
  commands: [list],
  default: 'list',
} satisfies Group;

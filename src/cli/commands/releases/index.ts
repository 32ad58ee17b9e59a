import type { Group } from '../../command.ts';
import list from './list.ts';
import rollback from './rollback.ts';

export default {
  name: 'releases',
  summary: 'List an app\'s releases, or roll back to one',
  description: 'Each deploy makes a release: its image digest, config, secrets version, strategy, who made it and how it went.',
  commands: [list, rollback],
  default: 'list',
} satisfies Group;

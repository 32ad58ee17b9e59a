import type { Group } from '../../command.ts';
import importCommand from './import.ts';
import list from './list.ts';
import rotateMasterKey from './rotate-master-key.ts';
import set from './set.ts';
import unset from './unset.ts';

export default {
  name: 'secrets',
  summary: 'Set, remove, list and import an app\'s secrets (write-only)',
  description: 'Secrets are encrypted at rest, never shown again, and delivered only to the app\'s instances. Setting and removing needs the developer role or higher; listing names and digests, any role. docs/security.md has the details.',
  commands: [set, unset, list, importCommand, rotateMasterKey],
} satisfies Group;

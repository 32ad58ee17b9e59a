import type { Group } from '../../command.ts';
import add from './add.ts';
import list from './list.ts';
import remove from './remove.ts';
import show from './show.ts';

export default {
  name: 'certs',
  summary: 'Add, list, show and remove an app\'s TLS certificates (ACME)',
  description: 'The edge gets certificates for every hostname in an app\'s ward.toml on its own; ward certs shows their status and last error, and adds names. Adding and removing needs the developer role or higher; listing, any role. docs/edge.md has the details.',
  commands: [add, list, show, remove],
} satisfies Group;

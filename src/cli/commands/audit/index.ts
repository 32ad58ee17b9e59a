import type { Group } from '../../command.ts';
import exportCommand from './export.ts';
import list from './list.ts';
import verify from './verify.ts';

export default {
  name: 'audit',
  summary: 'Read, verify and export the tamper-evident audit log',
  description: 'Needs the owner, admin or auditor role in the org. docs/audit.md explains what is recorded and how verification works.',
  commands: [list, verify, exportCommand],
} satisfies Group;

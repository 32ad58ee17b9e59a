import type { Group } from '../../command.ts';
import count from './count.ts';
import show from './show.ts';

export default {
  name: 'scale',
  summary: 'Show or set how many instances the app runs',
  commands: [count, show],
  default: 'show',
} satisfies Group;

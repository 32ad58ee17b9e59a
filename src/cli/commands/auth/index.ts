import type { Group } from '../../command.ts';
import login from './login.ts';
import logout from './logout.ts';
import signup from './signup.ts';
import whoami from './whoami.ts';

export default {
  name: 'auth',
  summary: 'Sign up, log in and out, and see who you are',
  commands: [signup, login, logout, whoami],
} satisfies Group;

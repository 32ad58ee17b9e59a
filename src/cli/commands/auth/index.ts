import type { Group } from '../../command.ts';
import login from './login.ts';
import logout from './logout.ts';
import mfa from './mfa.ts';
import password from './password.ts';
import signup from './signup.ts';
import whoami from './whoami.ts';

export default {
  name: 'auth',
  summary: 'Sign up, log in and out, see who you are, and secure your account (MFA, password)',
  commands: [signup, login, logout, whoami, mfa, password],
} satisfies Group;

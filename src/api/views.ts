import { formatDuration, type Org, type Role, type User } from '../core/index.ts';
import type { IssuedSession } from '../auth/index.ts';
import type { AppView } from '../services/index.ts';

// Views turn domain objects into the API's snake_case wire form. Only fields named here leave the server.

export const userView = (u: User) => ({ id: u.id, email: u.email, created_at: u.createdAt });
export const orgView = (o: Org) => ({ id: o.id, name: o.name, created_at: o.createdAt });
export const orgWithRoleView = (o: Org & { role: Role }) => ({ ...orgView(o), role: o.role });
export const sessionView = (s: IssuedSession) => ({
  token: s.token,
  kind: s.kind,
  expires_at: s.expiresAt,
  idle_timeout: formatDuration(s.idleTimeoutMs),
});
export const appView = (a: AppView) => ({
  id: a.id,
  name: a.name,
  org: orgView(a.org),
  created_at: a.createdAt,
  updated_at: a.updatedAt,
});

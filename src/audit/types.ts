import type { Store } from '../store/index.ts';
import type { AuditRecord } from './chain.ts';

/**
 * CallContext is what every service call that can change state or decide access carries: who is calling
 * (when known) and where the request came from. The audit log records it with each entry.
 */
export interface CallContext {
  actor: AuditActor;
  sourceIp: string | null;
  requestId: string | null;
}

export interface AuditActor {
  type: 'user' | 'token' | 'system' | 'anonymous';
  /** id is the user id (usr_…) or token id (tok_…); null for anonymous and system. */
  id: string | null;
  /** label is for people reading the log: an email, a token name. Never a secret. */
  label: string | null;
}

/**
 * AuditEvent is one thing worth recording: a change of state or an access decision. Actions are dotted
 * `<noun>.<verb>` names (`auth.login`, `app.create`, `secret.set`); docs/audit.md lists them. `details`
 * holds names, versions and ids — never a secret value, password, token or code.
 */
export interface AuditEvent {
  orgId: string | null;
  action: string;
  target?: string | null;
  outcome: 'success' | 'failure' | 'denied';
  details?: Record<string, unknown>;
}

/**
 * Auditor appends events to the hash-chained log. `record(tx, ctx, event)` writes within the caller's
 * transaction `tx`, so the entry commits or rolls back with the change it records; if the entry cannot be
 * written, the change fails. Outside a transaction (a refused login changes nothing else) pass the store.
 */
export interface Auditor {
  record(tx: Store, ctx: CallContext, event: AuditEvent): Promise<AuditRecord>;
}

export const SYSTEM_CONTEXT: CallContext = { actor: { type: 'system', id: null, label: 'ward' }, sourceIp: null, requestId: null };

import { isId, nameProblem, UserError } from '../core/index.ts';
import { actorOf, authorize, type OrgAction, type Principal, type Target } from '../auth/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import type { Store } from '../store/index.ts';

/**
 * contextOf is the audit context for a caller known only by its principal (no request at hand): the
 * API passes ctxOf(req) instead, which adds the source address and request id.
 */
export function contextOf(p: Principal): CallContext {
  return { actor: actorOf(p), sourceIp: null, requestId: null };
}

export interface AuditedTarget extends Target {
  /** id is the resource's id (its prefix names its kind), the entry's target; undefined when it does not exist. */
  id: string | undefined;
  /** ref is the name or id the caller asked for. */
  ref: string;
}

/**
 * authorizeAudited is authorize() that records each refusal as `access.denied` (outcome `denied`) before
 * rethrowing it. The entry goes to the chain of the org owning the resource, so the org's auditors see
 * outsiders probing its apps; a refusal for something that does not exist goes to the server's chain.
 * Either way one entry is written, so the time a refusal takes does not tell whether the resource exists.
 *
 * The entry is written on `store` outside any transaction of the refused operation (there is nothing of
 * it to commit); call this before opening one. If the entry cannot be written, that error propagates:
 * the request fails either way, and the failure is in the server log.
 */
export async function authorizeAudited(store: Store, audit: Auditor, p: Principal, ctx: CallContext, target: AuditedTarget, action: OrgAction, what: string): Promise<void> {
  try {
    authorize(p, target, action, what);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    // The ref is what the caller typed: keep it only when it is a plausible name or id, so a secret
    // pasted in the wrong place never reaches the log.
    const ref = isId(target.ref) || nameProblem(target.ref) === undefined ? target.ref : '(not a valid name)';
    await audit.record(store, ctx, {
      orgId: target.orgId ?? null,
      action: 'access.denied',
      target: target.id ?? null,
      outcome: 'denied',
      details: { requested: action, ref, reason: e.code },
    });
    throw e;
  }
}

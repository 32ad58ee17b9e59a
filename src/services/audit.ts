import { parseDuration, toTimestamp, UserError, type Clock, type Org } from '../core/index.ts';
import type { Principal } from '../auth/index.ts';
import type { Store } from '../store/index.ts';
import type { AuditRecord, AuditService, CallContext, ExportFormat, StoreVerifyResult } from '../audit/index.ts';
import { contextOf } from './audited.ts';
import type { OrgService } from './orgs.ts';

/** AUDIT_LIST_MAX is the most entries one `GET /v1/audit` answers with; clients page with `after`. */
export const AUDIT_LIST_MAX = 1000;
export const AUDIT_LIST_DEFAULT = 100;

/**
 * parseSince reads a `since` as users write it: a duration back from now (`1h`, `7d`) or an ISO-8601
 * timestamp. The answer is an ISO-8601 UTC timestamp.
 */
export function parseSince(input: string, now: Date): string {
  const s = input.trim();
  if (/^\d+(\.\d+)?(ms|s|m|h|d)/.test(s)) {
    try {
      return toTimestamp(now.getTime() - parseDuration(s));
    } catch {
      // fall through to the error below
    }
  } else if (/^\d{4}-\d{2}-\d{2}/.test(s) && !Number.isNaN(Date.parse(s))) {
    return toTimestamp(new Date(s));
  }
  throw new UserError('bad_request', `invalid since ${JSON.stringify(input)}`, { hint: 'give a duration back from now (30m, 24h, 7d) or a timestamp (2026-01-31T00:00:00Z)' });
}

/**
 * AuditLogService is what callers may do with an org's audit log: read, verify and export it. Each needs
 * `audit:read` in the org (owners, admins, auditors). Exports are themselves recorded (`audit.export`):
 * who took a copy of the log, and when, belongs in it.
 */
export class AuditLogService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #orgs: OrgService;
  readonly #audit: AuditService;

  constructor(store: Store, clock: Clock, orgs: OrgService, audit: AuditService) {
    this.#store = store;
    this.#clock = clock;
    this.#orgs = orgs;
    this.#audit = audit;
  }

  /**
   * list returns an org's entries in seq order, from `since` (a duration or timestamp) or after seq
   * `after`, at most `limit`; `nextAfter` is the cursor for the next page when there may be more.
   */
  async list(
    p: Principal,
    orgRef: string | undefined,
    q: { since?: string | undefined; after?: number | undefined; limit?: number | undefined },
    ctx: CallContext = contextOf(p),
  ): Promise<{ org: Org; entries: AuditRecord[]; nextAfter: number | null }> {
    const { org } = await this.#orgs.resolveOrDefault(p, orgRef, 'audit:read', ctx);
    const limit = Math.min(q.limit ?? AUDIT_LIST_DEFAULT, AUDIT_LIST_MAX);
    const since = q.since === undefined ? undefined : parseSince(q.since, this.#clock.now());
    const entries = await this.#store.audit.list({ orgId: org.id, since, afterSeq: q.after, limit: limit + 1 });
    const more = entries.length > limit;
    if (more) entries.length = limit;
    return { org, entries, nextAfter: more ? entries.at(-1)!.seq : null };
  }

  /** verify checks an org's chain and its checkpoints as they are in the database. */
  async verify(p: Principal, orgRef: string | undefined, ctx: CallContext = contextOf(p)): Promise<{ org: Org; result: StoreVerifyResult }> {
    const { org } = await this.#orgs.resolveOrDefault(p, orgRef, 'audit:read', ctx);
    return { org, result: await this.#audit.verify(this.#store, { orgId: org.id }) };
  }

  /**
   * export records `audit.export` and then returns the org's export, line by line. The entry is written
   * first, so the export holds the record of its own making.
   */
  async export(
    p: Principal,
    orgRef: string | undefined,
    q: { since?: string | undefined; format: ExportFormat },
    ctx: CallContext = contextOf(p),
  ): Promise<{ org: Org; lines: AsyncGenerator<string> }> {
    const { org } = await this.#orgs.resolveOrDefault(p, orgRef, 'audit:read', ctx);
    const since = q.since === undefined ? undefined : parseSince(q.since, this.#clock.now());
    await this.#audit.record(this.#store, ctx, {
      orgId: org.id,
      action: 'audit.export',
      target: org.id,
      outcome: 'success',
      details: { format: q.format, ...(since === undefined ? {} : { since }) },
    });
    return { org, lines: this.#audit.export(this.#store, { orgId: org.id, since, format: q.format }) };
  }
}

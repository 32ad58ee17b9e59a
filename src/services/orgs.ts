import { isId, nameProblem, newId, toTimestamp, UserError, type Clock, type Org, type Role } from '../core/index.ts';
import { visibleTo, type OrgAction, type Principal } from '../auth/index.ts';
import { StoreConflictError, type Store } from '../store/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { authorizeAudited, contextOf } from './audited.ts';

/** OrgService creates orgs and resolves them for a caller, checking the caller's role on the way. */
export class OrgService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #audit: Auditor;

  constructor(store: Store, clock: Clock, audit: Auditor) {
    this.#store = store;
    this.#clock = clock;
    this.#audit = audit;
  }

  async listForUser(p: Principal): Promise<Array<Org & { role: Role }>> {
    // A token sees only its own org, whatever else its creator belongs to.
    return (await this.#store.orgs.listForUser(p.userId)).filter((o) => visibleTo(p, o.id));
  }

  /** create makes an org with the caller as its owner, and records `org.create` with it. */
  async create(p: Principal, name: unknown, ctx: CallContext = contextOf(p)): Promise<Org> {
    if (typeof name !== 'string') throw new UserError('bad_request', 'an org name is required');
    const problem = nameProblem(name);
    if (problem) throw new UserError('invalid_name', `invalid org name "${name}": ${problem}`);
    const now = toTimestamp(this.#clock.now());
    const org: Org = { id: newId('org'), name, createdAt: now };
    try {
      await this.#store.transaction(async (tx) => {
        await tx.orgs.create(org);
        await tx.memberships.create({ id: newId('membership'), orgId: org.id, userId: p.userId, role: 'owner', createdAt: now });
        await this.#audit.record(tx, ctx, { orgId: org.id, action: 'org.create', target: org.id, outcome: 'success', details: { name } });
      });
    } catch (e) {
      if (e instanceof StoreConflictError && e.constraint === 'orgs.name') throw new UserError('name_taken', `the org name "${name}" is taken`, { hint: 'choose another name' });
      throw e;
    }
    return org;
  }

  /**
   * resolve finds an org by name or id and checks that the caller may perform action in it. Orgs the
   * caller does not belong to are reported as not found, whether or not they exist. A refusal is recorded
   * as `access.denied`; pass the request's ctx (ctxOf) so the entry says where it came from. Not for use
   * inside a transaction: the refusal is recorded on the store itself.
   */
  async resolve(p: Principal, ref: string, action: OrgAction, ctx: CallContext = contextOf(p)): Promise<{ org: Org; role: Role }> {
    const org = isId(ref, 'org') ? await this.#store.orgs.get(ref) : await this.#store.orgs.findByName(ref);
    const membership = org ? await this.#store.memberships.find(org.id, p.userId) : undefined;
    await authorizeAudited(this.#store, this.#audit, p, ctx, { orgId: org?.id, role: membership?.role, id: org?.id, ref }, action, `org "${ref}"`);
    return { org: org!, role: membership!.role };
  }

  /**
   * defaultOrg picks the org for a command that did not name one: the caller's only org, or, when there
   * are several, the oldest — the one a fresh server's first signup created.
   */
  async resolveOrDefault(p: Principal, ref: string | undefined, action: OrgAction, ctx: CallContext = contextOf(p)): Promise<{ org: Org; role: Role }> {
    if (ref) return this.resolve(p, ref, action, ctx);
    const orgs = await this.listForUser(p);
    const first = orgs[0];
    if (!first) throw new UserError('not_found', 'you are not a member of any org', { hint: 'create one: ward orgs create NAME' });
    await authorizeAudited(this.#store, this.#audit, p, ctx, { orgId: first.id, role: first.role, id: first.id, ref: first.name }, action, `org "${first.name}"`);
    const { role, ...org } = first;
    return { org, role };
  }

  async members(orgId: string) {
    return this.#store.memberships.listForOrg(orgId);
  }
}

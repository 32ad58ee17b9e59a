import { isId, nameProblem, newId, toTimestamp, UserError, type Clock, type Org, type Role } from '../core/index.ts';
import { authorize, type Action, type Principal } from '../auth/index.ts';
import { StoreConflictError, type Store } from '../store/index.ts';

/** OrgService creates orgs and resolves them for a caller, checking the caller's role on the way. */
export class OrgService {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  async listForUser(p: Principal): Promise<Array<Org & { role: Role }>> {
    return this.#store.orgs.listForUser(p.userId);
  }

  /** create makes an org with the caller as its owner. */
  async create(p: Principal, name: unknown): Promise<Org> {
    if (typeof name !== 'string') throw new UserError('bad_request', 'an org name is required');
    const problem = nameProblem(name);
    if (problem) throw new UserError('invalid_name', `invalid org name "${name}": ${problem}`);
    const now = toTimestamp(this.#clock.now());
    const org: Org = { id: newId('org'), name, createdAt: now };
    try {
      await this.#store.transaction(async (tx) => {
        await tx.orgs.create(org);
        await tx.memberships.create({ id: newId('membership'), orgId: org.id, userId: p.userId, role: 'owner', createdAt: now });
      });
    } catch (e) {
      if (e instanceof StoreConflictError) throw new UserError('name_taken', `the org name "${name}" is taken`, { hint: 'choose another name' });
      throw e;
    }
    return org;
  }

  /**
   * resolve finds an org by name or id and checks that the caller may perform action in it. Orgs the
   * caller does not belong to are reported as not found, whether or not they exist.
   */
  async resolve(p: Principal, ref: string, action: Action): Promise<{ org: Org; role: Role }> {
    const org = isId(ref, 'org') ? await this.#store.orgs.get(ref) : await this.#store.orgs.findByName(ref);
    const membership = org ? await this.#store.memberships.find(org.id, p.userId) : undefined;
    authorize(membership?.role, action, `org "${ref}"`);
    return { org: org!, role: membership!.role };
  }

  /**
   * defaultOrg picks the org for a command that did not name one: the caller's only org, or, when there
   * are several, the oldest — the one a fresh server's first signup created.
   */
  async resolveOrDefault(p: Principal, ref: string | undefined, action: Action): Promise<{ org: Org; role: Role }> {
    if (ref) return this.resolve(p, ref, action);
    const orgs = await this.#store.orgs.listForUser(p.userId);
    const first = orgs[0];
    if (!first) throw new UserError('not_found', 'you are not a member of any org', { hint: 'create one: ward orgs create NAME' });
    authorize(first.role, action, `org "${first.name}"`);
    const { role, ...org } = first;
    return { org, role };
  }

  async members(orgId: string) {
    return this.#store.memberships.listForOrg(orgId);
  }
}

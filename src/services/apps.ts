import { isId, nameProblem, newId, toTimestamp, UserError, type App, type Clock, type Org } from '../core/index.ts';
import { visibleTo, type OrgAction, type Principal } from '../auth/index.ts';
import { StoreConflictError, type Store } from '../store/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { authorizeAudited, contextOf } from './audited.ts';
import type { OrgService } from './orgs.ts';

export interface AppView extends App {
  org: Org;
}

/** AppService creates, lists, resolves and destroys apps. App names are unique across the server. */
export class AppService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #orgs: OrgService;
  readonly #audit: Auditor;

  constructor(store: Store, clock: Clock, orgs: OrgService, audit: Auditor) {
    this.#store = store;
    this.#clock = clock;
    this.#orgs = orgs;
    this.#audit = audit;
  }

  /** create makes an app and records `app.create` in the same transaction. */
  async create(p: Principal, name: unknown, orgRef: string | undefined, ctx: CallContext = contextOf(p)): Promise<AppView> {
    if (typeof name !== 'string') throw new UserError('bad_request', 'an app name is required');
    const problem = nameProblem(name);
    if (problem) throw new UserError('invalid_name', `invalid app name "${name}": ${problem}`, { hint: 'app names become hostnames: use a DNS label like patient-portal' });
    const { org } = await this.#orgs.resolveOrDefault(p, orgRef, 'app:create', ctx);
    const now = toTimestamp(this.#clock.now());
    const app: App = { id: newId('app'), orgId: org.id, name, createdAt: now, updatedAt: now };
    try {
      await this.#store.transaction(async (tx) => {
        await tx.apps.create(app);
        await this.#audit.record(tx, ctx, { orgId: org.id, action: 'app.create', target: app.id, outcome: 'success', details: { name } });
      });
    } catch (e) {
      // Names are unique server-wide because they become hostnames; say so without revealing the owner.
      if (e instanceof StoreConflictError && e.constraint === 'apps.name') throw new UserError('name_taken', `the app name "${name}" is taken on this server`, { hint: 'choose another name' });
      throw e;
    }
    return { ...app, org };
  }

  async list(p: Principal, orgRef: string | undefined, ctx: CallContext = contextOf(p)): Promise<AppView[]> {
    const orgs = await this.#orgs.listForUser(p);
    const byId = new Map(orgs.map(({ role: _role, ...o }) => [o.id, o] as const));
    if (orgRef) {
      const { org } = await this.#orgs.resolve(p, orgRef, 'app:read', ctx);
      return (await this.#store.apps.listForOrg(org.id)).filter((a) => visibleTo(p, a.orgId, a.id)).map((a) => ({ ...a, org }));
    }
    const apps = (await this.#store.apps.listForUser(p.userId)).filter((a) => visibleTo(p, a.orgId, a.id));
    return apps.map((a) => ({ ...a, org: byId.get(a.orgId)! }));
  }

  /**
   * resolve finds an app by name or id and checks the caller may perform action on it; a refusal is
   * recorded as `access.denied` (see OrgService.resolve).
   */
  async resolve(p: Principal, ref: string, action: OrgAction, ctx: CallContext = contextOf(p)): Promise<AppView> {
    const app = isId(ref, 'app') ? await this.#store.apps.get(ref) : await this.#store.apps.findByName(ref);
    const membership = app ? await this.#store.memberships.find(app.orgId, p.userId) : undefined;
    await authorizeAudited(this.#store, this.#audit, p, ctx, { orgId: app?.orgId, appId: app?.id, role: membership?.role, id: app?.id, ref }, action, `app "${ref}"`);
    const org = (await this.#store.orgs.get(app!.orgId))!;
    return { ...app!, org };
  }

  /** destroy deletes an app and records `app.destroy` in the same transaction. */
  async destroy(p: Principal, ref: string, ctx: CallContext = contextOf(p)): Promise<AppView> {
    const app = await this.resolve(p, ref, 'app:destroy', ctx);
    await this.#store.transaction(async (tx) => {
      await tx.apps.delete(app.id);
      await this.#audit.record(tx, ctx, { orgId: app.orgId, action: 'app.destroy', target: app.id, outcome: 'success', details: { name: app.name } });
    });
    return app;
  }
}

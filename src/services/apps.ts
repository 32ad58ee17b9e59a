import { isId, nameProblem, newId, toTimestamp, UserError, type App, type Clock, type Org } from '../core/index.ts';
import { authorize, type Action, type Principal } from '../auth/index.ts';
import { StoreConflictError, type Store } from '../store/index.ts';
import type { OrgService } from './orgs.ts';

export interface AppView extends App {
  org: Org;
}

/** AppService creates, lists, resolves and destroys apps. App names are unique across the server. */
export class AppService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #orgs: OrgService;

  constructor(store: Store, clock: Clock, orgs: OrgService) {
    this.#store = store;
    this.#clock = clock;
    this.#orgs = orgs;
  }

  async create(p: Principal, name: unknown, orgRef: string | undefined): Promise<AppView> {
    if (typeof name !== 'string') throw new UserError('bad_request', 'an app name is required');
    const problem = nameProblem(name);
    if (problem) throw new UserError('invalid_name', `invalid app name "${name}": ${problem}`, { hint: 'app names become hostnames: use a DNS label like patient-portal' });
    const { org } = await this.#orgs.resolveOrDefault(p, orgRef, 'app:create');
    const now = toTimestamp(this.#clock.now());
    const app: App = { id: newId('app'), orgId: org.id, name, createdAt: now, updatedAt: now };
    try {
      await this.#store.apps.create(app);
    } catch (e) {
      // Names are unique server-wide because they become hostnames; say so without revealing the owner.
      if (e instanceof StoreConflictError) throw new UserError('name_taken', `the app name "${name}" is taken on this server`, { hint: 'choose another name' });
      throw e;
    }
    return { ...app, org };
  }

  async list(p: Principal, orgRef: string | undefined): Promise<AppView[]> {
    const orgs = await this.#store.orgs.listForUser(p.userId);
    const byId = new Map(orgs.map(({ role: _role, ...o }) => [o.id, o] as const));
    if (orgRef) {
      const { org } = await this.#orgs.resolve(p, orgRef, 'app:read');
      return (await this.#store.apps.listForOrg(org.id)).map((a) => ({ ...a, org }));
    }
    const apps = await this.#store.apps.listForUser(p.userId);
    return apps.map((a) => ({ ...a, org: byId.get(a.orgId)! }));
  }

  /** resolve finds an app by name or id and checks the caller may perform action on it. */
  async resolve(p: Principal, ref: string, action: Action): Promise<AppView> {
    const app = isId(ref, 'app') ? await this.#store.apps.get(ref) : await this.#store.apps.findByName(ref);
    const membership = app ? await this.#store.memberships.find(app.orgId, p.userId) : undefined;
    authorize(membership?.role, action, `app "${ref}"`);
    const org = (await this.#store.orgs.get(app!.orgId))!;
    return { ...app!, org };
  }

  async destroy(p: Principal, ref: string): Promise<AppView> {
    const app = await this.resolve(p, ref, 'app:destroy');
    await this.#store.apps.delete(app.id);
    return app;
  }
}

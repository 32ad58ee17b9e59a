import {
  formatDuration,
  isId,
  newId,
  parseDuration,
  toTimestamp,
  UserError,
  TOKEN_SCOPES,
  type ApiToken,
  type App,
  type Clock,
  type Org,
  type Role,
  type TokenScope,
} from '../core/index.ts';
import type { Store } from '../store/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { authorize, can, SCOPE_NEEDS, type Principal, type SessionPrincipal, type TokenPrincipal } from './authorize.ts';
import { hashSecret, newSecret, secretKind } from './tokens.ts';

/**
 * API token lifetimes: 30 days unless asked otherwise, one year at most, never "forever" — a token that
 * cannot expire outlives the reason it was made (OWASP ASVS 3.5). At least a minute, so a typo like
 * `--expires 1s` is caught rather than issuing a token that is dead on arrival.
 */
export const TOKEN_TTL = { defaultMs: parseDuration('30d'), maxMs: parseDuration('365d'), minMs: parseDuration('1m') } as const;

/** Tokens record their last use at most this often, like sessions. */
const TOUCH_EVERY_MS = 60_000;

const NAME_RE = /^[\p{L}\p{N}][\p{L}\p{N} ._:/@+-]{0,63}$/u;

/** TokenView is a token as listed: everything but its hash, with its org's and app's names. */
export interface TokenView extends Omit<ApiToken, 'tokenHash'> {
  orgName: string;
  appName: string | null;
}

export interface CreateTokenInput {
  name: unknown;
  scope: unknown;
  org?: string | undefined;
  app?: string | undefined;
  expiresIn?: unknown;
}

/**
 * TokenService creates, lists, revokes and authenticates API tokens (`ward_tok_…`). A token acts for the
 * person who created it, inside one org and optionally one app; what it may do there is decided by
 * authorize() from its scope and its creator's current role.
 */
export class TokenService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #auditor: Auditor;

  constructor(store: Store, clock: Clock, auditor: Auditor) {
    this.#store = store;
    this.#clock = clock;
    this.#auditor = auditor;
  }

  /** create makes a token and returns its secret, which is never shown or stored again. */
  async create(p: SessionPrincipal, input: CreateTokenInput, ctx: CallContext): Promise<{ token: TokenView; secret: string }> {
    const name = typeof input.name === 'string' ? input.name.trim() : '';
    if (!NAME_RE.test(name)) {
      throw new UserError('bad_request', 'a token needs a name of 1–64 letters, digits, spaces and . _ : / @ + -', { hint: 'say what it is for: --name github-actions' });
    }
    if (typeof input.scope !== 'string' || !(TOKEN_SCOPES as readonly string[]).includes(input.scope)) {
      throw new UserError('bad_request', `scope must be one of ${TOKEN_SCOPES.join(', ')}`);
    }
    const scope = input.scope as TokenScope;
    const ttl = parseTtl(input.expiresIn);
    const { org, role } = await this.#resolveOrg(p, input.org);
    // Nobody mints a token claiming more than they may do themselves.
    authorize(p, { orgId: org.id, role }, SCOPE_NEEDS[scope], `org "${org.name}"`);
    let app: App | undefined;
    if (input.app !== undefined && input.app !== '') {
      app = isId(input.app, 'app') ? await this.#store.apps.get(input.app) : await this.#store.apps.findByName(input.app);
      if (!app || app.orgId !== org.id) throw new UserError('not_found', `app "${input.app}" not found in org "${org.name}"`);
    }
    const secret = newSecret('api');
    const nowMs = this.#clock.now().getTime();
    const token: ApiToken = {
      id: newId('token'),
      name,
      tokenHash: hashSecret(secret),
      orgId: org.id,
      appId: app?.id ?? null,
      scope,
      createdBy: p.userId,
      createdAt: toTimestamp(nowMs),
      expiresAt: toTimestamp(nowMs + ttl),
      lastUsedAt: null,
      revokedAt: null,
    };
    await this.#store.transaction(async (tx) => {
      await tx.tokens.create(token);
      await this.#auditor.record(tx, ctx, {
        orgId: org.id,
        action: 'token.create',
        target: token.id,
        outcome: 'success',
        details: { name, scope, app_id: token.appId, expires_at: token.expiresAt },
      });
    });
    const { tokenHash: _hash, ...rest } = token;
    return { token: { ...rest, orgName: org.name, appName: app?.name ?? null }, secret };
  }

  /** list returns the tokens the caller created (a token sees only those of its own org). */
  async list(p: Principal): Promise<TokenView[]> {
    const tokens = (await this.#store.tokens.listForUser(p.userId)).filter((t) => p.via !== 'token' || t.orgId === p.orgId);
    const names = new Map<string, string>();
    const out: TokenView[] = [];
    for (const t of tokens) out.push(await this.#view(t, names));
    return out;
  }

  async #view(t: ApiToken, names = new Map<string, string>()): Promise<TokenView> {
    const nameOf = async (id: string, get: (id: string) => Promise<{ name: string } | undefined>) => {
      if (!names.has(id)) names.set(id, (await get(id))?.name ?? id);
      return names.get(id)!;
    };
    const { tokenHash: _hash, ...rest } = t;
    return {
      ...rest,
      orgName: await nameOf(t.orgId, (id) => this.#store.orgs.get(id)),
      appName: t.appId ? await nameOf(t.appId, (id) => this.#store.apps.get(id)) : null,
    };
  }

  /**
   * revoke ends a token at once. Its creator may revoke it, and so may whoever manages its org (an owner
   * or admin cleaning up after someone who left). Anyone else is told it does not exist.
   */
  async revoke(p: SessionPrincipal, id: string, ctx: CallContext): Promise<TokenView> {
    const token = isId(id, 'token') ? await this.#store.tokens.get(id) : undefined;
    if (!token) throw new UserError('not_found', `token "${id}" not found`, { hint: 'ward tokens list shows your tokens' });
    if (token.createdBy !== p.userId) {
      const membership = await this.#store.memberships.find(token.orgId, p.userId);
      if (!can(membership?.role, 'org:manage')) throw new UserError('not_found', `token "${id}" not found`, { hint: 'ward tokens list shows your tokens' });
      authorize(p, { orgId: token.orgId, role: membership?.role }, 'org:manage', `token "${id}"`);
    }
    const now = toTimestamp(this.#clock.now());
    await this.#store.transaction(async (tx) => {
      const revoked = await tx.tokens.revoke(token.id, now);
      if (revoked) {
        await this.#auditor.record(tx, ctx, { orgId: token.orgId, action: 'token.revoke', target: token.id, outcome: 'success', details: { name: token.name, scope: token.scope } });
      }
    });
    return this.#view((await this.#store.tokens.get(token.id)) ?? { ...token, revokedAt: token.revokedAt ?? now });
  }

  /**
   * authenticate turns a `ward_tok_…` bearer into a principal, or returns undefined for anything that is
   * not a live token (unknown, revoked, expired, its creator gone). The first use is audited, once.
   */
  async authenticate(bearer: string, ctx: Omit<CallContext, 'actor'>): Promise<Omit<TokenPrincipal, 'mfaRequiredBy'> | undefined> {
    if (secretKind(bearer) !== 'api') return undefined;
    const token = await this.#store.tokens.findByTokenHash(hashSecret(bearer));
    const nowMs = this.#clock.now().getTime();
    if (!token || token.revokedAt !== null || Date.parse(token.expiresAt) <= nowMs) return undefined;
    const user = await this.#store.users.get(token.createdBy);
    if (!user) return undefined;
    const principal = {
      userId: user.id,
      email: user.email,
      via: 'token' as const,
      tokenId: token.id,
      tokenName: token.name,
      scope: token.scope,
      orgId: token.orgId,
      appId: token.appId,
    };
    const now = toTimestamp(nowMs);
    if (token.lastUsedAt === null) {
      await this.#store.transaction(async (tx) => {
        // Of concurrent first requests exactly one marks the token; only that one writes the entry.
        if (await tx.tokens.markFirstUse(token.id, now)) {
          await this.#auditor.record(tx, { ...ctx, actor: { type: 'token', id: token.id, label: `${token.name} (${user.email})` } }, {
            orgId: token.orgId,
            action: 'token.use',
            target: token.id,
            outcome: 'success',
            details: { name: token.name, scope: token.scope, first_use: true },
          });
        }
      });
    } else if (nowMs - Date.parse(token.lastUsedAt) >= TOUCH_EVERY_MS) {
      await this.#store.tokens.touch(token.id, now);
    }
    return principal;
  }

  async #resolveOrg(p: SessionPrincipal, ref: string | undefined): Promise<{ org: Org; role: Role }> {
    if (ref) {
      const org = isId(ref, 'org') ? await this.#store.orgs.get(ref) : await this.#store.orgs.findByName(ref);
      const membership = org ? await this.#store.memberships.find(org.id, p.userId) : undefined;
      if (!org || !membership) throw new UserError('not_found', `org "${ref}" not found`);
      return { org, role: membership.role };
    }
    const orgs = await this.#store.orgs.listForUser(p.userId);
    const first = orgs[0];
    if (!first) throw new UserError('not_found', 'you are not a member of any org', { hint: 'create one: ward orgs create NAME' });
    const { role, ...org } = first;
    return { org, role };
  }
}

function parseTtl(input: unknown): number {
  if (input === undefined || input === null || input === '') return TOKEN_TTL.defaultMs;
  let ttl: number;
  try {
    ttl = parseDuration(String(input));
  } catch (e) {
    throw new UserError('bad_request', (e as Error).message);
  }
  if (ttl < TOKEN_TTL.minMs || ttl > TOKEN_TTL.maxMs) {
    throw new UserError('bad_request', `tokens expire after ${formatDuration(TOKEN_TTL.minMs)} at least and ${formatDuration(TOKEN_TTL.maxMs)} at most; never "forever"`, {
      hint: 'pass --expires like 24h, 30d or 365d, and make a new token when it runs out',
    });
  }
  return ttl;
}

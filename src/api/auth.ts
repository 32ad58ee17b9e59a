import type { FastifyRequest } from 'fastify';
import { UserError } from '../core/index.ts';
import type { Principal } from '../auth/index.ts';

/**
 * bearerToken extracts the token of an `Authorization: Bearer …` header (RFC 6750 §2.1). Anything else —
 * another scheme, an empty token, several tokens — counts as no credential.
 */
export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(h.trim());
  return m?.[1];
}

/** principalOf returns the authenticated caller of a route that required one. */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new UserError('unauthenticated', 'this request needs a credential');
  return req.principal;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /**
     * auth says who may call a route: 'none' for public routes (health, signup, login, the API document),
     * 'user' for any authenticated caller; what that caller may then do is decided by src/auth's
     * authorize() with the caller's role in the org that owns the resource. Routes that say nothing
     * require a user: the default is closed.
     */
    auth?: 'none' | 'user';
  }
}

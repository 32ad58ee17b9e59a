import type { FastifyRequest } from 'fastify';
import { UserError } from '../core/index.ts';
import type { Host } from '../core/index.ts';
import { actorOf, type Action, type Principal, type SessionPrincipal } from '../auth/index.ts';
import type { AuditService, CallContext } from '../audit/index.ts';
import type { SecretDeliveryService, SecretService } from '../services/index.ts';
import type { Registry } from 'prom-client';
import type { CertificateHolder } from './routes/certs.ts';

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

/**
 * sessionOf returns the caller of a route that only a person's session may use (its route declares an
 * `account:enrol` or `account:manage` action, which authorizeRoute refuses to tokens).
 */
export function sessionOf(req: FastifyRequest): SessionPrincipal {
  const p = principalOf(req);
  if (p.via !== 'session') throw new UserError('forbidden', 'this needs a person\'s session, not an API token', { hint: 'log in: ward auth login' });
  return p;
}

/**
 * ctxOf is the audit context of a request: who (the principal's person or token, or anonymous before
 * authentication), from where (the client address Fastify sees, req.ip) and which request (req.id, the
 * X-Request-Id the client and the server log share).
 */
export function ctxOf(req: FastifyRequest): CallContext {
  const actor = req.principal ? actorOf(req.principal) : ({ type: 'anonymous', id: null, label: null } as const);
  return { actor, sourceIp: req.ip || null, requestId: req.id || null };
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /** agentHost is the host whose agent made the request, on routes that declare `auth: 'host'`. */
    agentHost?: Host;
  }
  interface FastifyInstance {
    /** audit is the API's AuditService; startServer runs its checkpoint timer. */
    audit: AuditService;
    /** secrets is the write-only secrets service; startServer plugs the deploy rollout into it. */
    secrets: SecretService;
    /** deliveries mints and trades delivery tokens; startServer hands it to the in-process agent. */
    deliveries: SecretDeliveryService;
    /** certificates serves `ward certs` once startServer sets the edge role's service. */
    certificates: CertificateHolder;
    /** metricsRegistry is the registry behind /metrics (the edge role registers its metrics there). */
    metricsRegistry: Registry;
    /** metricsSources add text from other processes to /metrics (the edge's worker processes). */
    metricsSources: Array<() => Promise<string>>;
  }
  interface FastifyContextConfig {
    /**
     * auth says what a route needs: 'none' for public routes (health, signup, login, the API document),
     * else the Action (src/auth/authorize.ts) it performs. The API authenticates the caller and runs
     * authorizeRoute(principal, action) before the handler; the handler's service then runs authorize()
     * on the resource with the caller's role in its org. A route that declares nothing is refused to
     * everyone (the default is closed), and test/integration/authz.test.ts fails on it. 'host' routes
     * serve agents: they take a host credential (ward_hst_…) and refuse every person's.
     */
    auth?: 'none' | 'host' | Action;
  }
}

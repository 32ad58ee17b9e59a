import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type RouteOptions } from 'fastify';
import swagger from '@fastify/swagger';
import { errorBody, newId, toTimestamp, UserError, type Clock } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import { AccountService, authorizeRoute, MemberService, PolicyService } from '../auth/index.ts';
import { AppKeys, ephemeralKeyProvider, openSealingKeys, type KeyProvider } from '../secrets/index.ts';
import { AppService, AuditLogService, OrgService, ReleaseRollout, SecretDeliveryService, SecretService } from '../services/index.ts';
import { AuditService, generateAuditKey, type AuditKey } from '../audit/index.ts';
import { ApiMetrics } from './metrics.ts';
import { bearerToken } from './auth.ts';
import { sharedSchemas } from './schemas.ts';
import { healthRoutes } from './routes/health.ts';
import { authRoutes } from './routes/auth.ts';
import { orgRoutes } from './routes/orgs.ts';
import { appRoutes } from './routes/apps.ts';
import { auditRoutes } from './routes/audit.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { memberRoutes } from './routes/members.ts';
import { secretRoutes } from './routes/secrets.ts';
import { certRoutes, CertificateHolder } from './routes/certs.ts';
import { deployRoutes, imageUploadRoutes } from './routes/deploys.ts';
import { DeployService, type DeployServiceOptions } from '../services/index.ts';
import { NetworkService, type NetworkServiceOptions } from '../services/index.ts';
import { networkRoutes } from './routes/network.ts';
import { VolumeService, type VolumeServiceOptions } from '../services/index.ts';
import { volumeRoutes } from './routes/volumes.ts';
import { BackupService, type BackupServiceOptions } from '../services/index.ts';
import { backupRoutes } from './routes/backups.ts';
import { BackupMetrics, ResticEngine, tmpfsScratch } from '../backups/index.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deployer } from '../scheduler/index.ts';

export interface ApiDeps {
  store: Store;
  clock: Clock;
  logger: FastifyBaseLogger;
  version: string;
  /**
   * auditKey signs audit checkpoints; the server loads it from its data directory. Without one (tests)
   * a fresh key is made for this API and registered like any other.
   */
  auditKey?: AuditKey;
  /**
   * keys is the master key provider (src/secrets, the KEK) that wraps the data keys of app secrets and of
   * the server's own sealed values (TOTP secrets); startServer opens the
   * --master-key-file. Without one (tests) an in-memory key is made, and whatever it sealed is lost
   * when the process ends.
   */
  keys?: KeyProvider;
  /** onRoute sees each route as it is registered; test/integration/authz.test.ts lists them with it. */
  onRoute?: (route: RouteOptions) => void;
  /**
   * deploys wires the deploy routes to the image store, the log journal and the agents (startServer
   * passes them). Without it, uploads, deploys and logs answer `unavailable`; status, releases and
   * restarts still work from the store.
   */
  deploys?: Pick<DeployServiceOptions, 'images' | 'logs' | 'uploadDir' | 'maxUploadBytes' | 'onDesiredChange' | 'secretsVersion'>;
  /** network gives the WireGuard routes this host's gateway (the agent's key and endpoint); without it creating a peer is `unavailable`. */
  network?: Pick<NetworkServiceOptions, 'gateway'>;
  /** volumes gives the volume routes this host's agent (removing a destroyed volume's file); without it the file stays, unreadable. */
  volumes?: Pick<VolumeServiceOptions, 'files'>;
  /**
   * backups gives the backup routes this host's agent (its volumes and runtime), where drills restore
   * (startServer: a tmpfs per drill under the data directory) and restic's options. Without a host,
   * targets, policies and lists work and run/restore/verify answer `unavailable`.
   */
  backups?: Partial<Pick<BackupServiceOptions, 'host' | 'scratch' | 'engine'>>;
}

export interface Services {
  accounts: AccountService;
  members: MemberService;
  policies: PolicyService;
  orgs: OrgService;
  apps: AppService;
  audit: AuditService;
  /** certificates is the edge role's certificate service, set by startServer (`ward certs`). */
  certificates: CertificateHolder;
  auditLog: AuditLogService;
  store: Store;
  version: string;
  metrics: ApiMetrics;
  secrets: SecretService;
  deliveries: SecretDeliveryService;
  network: NetworkService;
  volumes: VolumeService;
  backups: BackupService;
}

/** Requests bodies above this size are refused with 413 before they are parsed. */
export const BODY_LIMIT = 1024 * 1024;

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** buildApi assembles the control plane's HTTP API. It does not listen; the caller does. */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const metrics = new ApiMetrics();
  const audit = new AuditService({ store: deps.store, clock: deps.clock, key: deps.auditKey ?? generateAuditKey(), logger: deps.logger });
  await audit.init();
  const orgs = new OrgService(deps.store, deps.clock, audit);
  const kek = deps.keys ?? ephemeralKeyProvider();
  const now = () => toTimestamp(deps.clock.now());
  // The server's own root data key (TOTP secrets) unwraps here, at start: a wrong master key fails now.
  const sealing = await openSealingKeys(deps.store, kek, now);
  const appKeys = new AppKeys(kek, now);
  const apps = new AppService(deps.store, deps.clock, orgs, audit);
  // The Deployer drives each release's strategy; startServer starts it (tests that only call routes do not).
  const deployer = new Deployer({ store: deps.store, clock: deps.clock, audit, logger: deps.logger, ...(deps.deploys?.onDesiredChange ? { onDesiredChange: deps.deploys.onDesiredChange } : {}), ...(deps.deploys?.logs ? { logs: deps.deploys.logs } : {}) });
  // A deploy pins the app's newest secrets version (issue "Secrets"); 0 means the app has none.
  const secretsVersion = async (appId: string) => (await deps.store.secrets.latestVersion(appId)) || null;
  const deploys = new DeployService({ store: deps.store, clock: deps.clock, apps, audit, secretsVersion, ...deps.deploys, onRelease: (id) => deployer.track(id) });
  // `ward secrets set` without --stage rolls the app onto a release carrying the new version, through the same Deployer.
  const rollout = new ReleaseRollout({ store: deps.store, clock: deps.clock, audit, onRelease: (id) => deployer.track(id), ...(deps.deploys?.onDesiredChange ? { onDesiredChange: deps.deploys.onDesiredChange } : {}) });
  const services: Services = {
    accounts: new AccountService(deps.store, deps.clock, {
      auditor: audit,
      keys: sealing,
      onLoginFailure: (reason) => metrics.loginFailures.inc({ reason }),
    }),
    members: new MemberService(deps.store, deps.clock, audit),
    policies: new PolicyService(deps.store, deps.clock, audit),
    orgs,
    apps,
    secrets: new SecretService({ store: deps.store, clock: deps.clock, apps, audit, keys: appKeys, rollout }),
    deliveries: new SecretDeliveryService({ store: deps.store, clock: deps.clock, audit, keys: appKeys, logger: deps.logger }),
    network: new NetworkService({
      store: deps.store,
      clock: deps.clock,
      orgs,
      audit,
      ...(deps.network?.gateway ? { gateway: deps.network.gateway } : {}),
      ...(deps.deploys?.onDesiredChange ? { onChange: deps.deploys.onDesiredChange } : {}),
    }),
    volumes: new VolumeService({ store: deps.store, clock: deps.clock, apps, audit, keys: appKeys, logger: deps.logger, ...(deps.volumes?.files ? { files: deps.volumes.files } : {}) }),
    backups: new BackupService({
      store: deps.store,
      clock: deps.clock,
      orgs,
      apps,
      audit,
      sealing,
      engine: deps.backups?.engine ?? new ResticEngine(),
      metrics: new BackupMetrics(metrics.registry),
      scratch: deps.backups?.scratch ?? tmpfsScratch(join(tmpdir(), 'ward-drills')),
      logger: deps.logger,
      ...(deps.backups?.host ? { host: deps.backups.host } : {}),
    }),
    audit,
    certificates: new CertificateHolder(),
    auditLog: new AuditLogService(deps.store, deps.clock, orgs, audit),
    store: deps.store,
    version: deps.version,
    metrics,
  };

  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: BODY_LIMIT,
    // A client's request id is kept when it is short and safe to log; otherwise we make one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : newId('request');
    },
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
  });

  // First, so it sees every route registered after it (tests enumerate the routes this way).
  if (deps.onRoute) app.addHook('onRoute', deps.onRoute);
  for (const s of sharedSchemas) app.addSchema(s);
  // The server starts and stops the checkpoint timer (startServer); it finds the service here.
  app.decorate('audit', audit);
  // The server wires the agent (delivery tokens, its in-process fetcher) and the deploy rollout to these.
  app.decorate('secrets', services.secrets);
  app.decorate('deliveries', services.deliveries);
  app.decorate('deployer', deployer);
  app.decorate('backups', services.backups);
  // The edge role (startServer) serves `ward certs` through this holder and adds its metrics to /metrics.
  app.decorate('certificates', services.certificates);
  app.decorate('metricsRegistry', metrics.registry);
  app.decorate('metricsSources', metrics.sources);
  app.addHook('onClose', async () => deployer.close());

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Ward API', version: deps.version, description: 'The control plane API of Ward. See docs/api.md.' },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A session token (ward_ses_…) or API token (ward_tok_…).' } },
      },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    const needs = req.routeOptions.config.auth;
    if (needs === 'none') return;
    if (req.routeOptions.url === undefined) return; // unmatched: the 404 handler answers
    if (needs === 'host') {
      // Agents, not people: a host credential (ward_hst_…), and nothing else, opens these routes.
      req.agentHost = await services.deliveries.authenticateHost(bearerToken(req));
      return;
    }
    req.principal = await services.accounts.authenticate(bearerToken(req), { sourceIp: req.ip || null, requestId: req.id || null });
    if (needs === undefined) {
      // Closed by default: a route that forgot its declaration serves nobody (authz.test.ts catches it).
      throw new UserError('forbidden', `${req.method} ${req.routeOptions.url} declares no permission, so it is refused`);
    }
    authorizeRoute(req.principal, needs);
  });

  app.addHook('onResponse', async (req, reply) => {
    const labels = { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.duration.observe(labels, reply.elapsedTime / 1000);
  });

  app.setNotFoundHandler(async (req, reply) => {
    const e = new UserError('not_found', `no route for ${req.method} ${req.url.split('?')[0]}`, { hint: 'see /v1/openapi.json for the API' });
    return reply.status(404).send(errorBody(e, req.id));
  });

  app.setErrorHandler(async (err: FastifyError, req, reply) => {
    const e = toUserError(err);
    if (e) {
      if (e.code === 'too_many_requests' && e.details?.retry_after_s !== undefined) reply.header('retry-after', String(e.details.retry_after_s));
      return reply.status(e.status).send(errorBody(e, req.id));
    }
    req.log.error({ err }, 'unhandled error');
    return reply.status(500).send(errorBody(new UserError('internal', 'internal error; the server log has details under this request id'), req.id));
  });

  await app.register(healthRoutes(services));
  await app.register(authRoutes(services));
  await app.register(orgRoutes(services));
  await app.register(appRoutes(services));
  await app.register(auditRoutes(services));
  await app.register(tokenRoutes(services));
  await app.register(memberRoutes(services));
  await app.register(secretRoutes(services));
  await app.register(networkRoutes(services));
  await app.register(volumeRoutes(services));
  await app.register(backupRoutes(services));
  await app.register(certRoutes(services));
  await app.register(deployRoutes(services, { deploys }));
  await app.register(imageUploadRoutes({ deploys }));

  app.get('/v1/openapi.json', { config: { auth: 'none' }, schema: { hide: true } }, async () => app.swagger());

  return app;
}

/** toUserError maps what Fastify and our services throw to a catalogued error; undefined means a bug. */
function toUserError(err: FastifyError): UserError | undefined {
  if (err instanceof UserError) return err;
  if (err.validation) {
    const first = err.validation[0];
    const where = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : (first?.params as { missingProperty?: string } | undefined)?.missingProperty ?? '';
    const context = err.validationContext ?? 'body';
    return new UserError('bad_request', `invalid request ${context}${where ? ` at ${where}` : ''}: ${first?.message ?? err.message}`);
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new UserError('payload_too_large', `request body is larger than ${BODY_LIMIT} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UserError('unsupported_media_type', 'request bodies must be application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new UserError('invalid_json', 'the request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new UserError('bad_request', 'the Content-Length header does not match the body');
  }
  if (err instanceof SyntaxError && err.statusCode === 400) return new UserError('invalid_json', 'the request body is not valid JSON');
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new UserError(err.statusCode === 405 ? 'method_not_allowed' : 'bad_request', err.message);
  }
  return undefined;
}

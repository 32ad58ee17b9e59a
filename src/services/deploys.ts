/**
 * DeployService: image uploads, deploys (releases and their instances), status, restarts, releases and
 * logs of an app. Every method resolves the app with the caller's permission first (app:deploy to
 * change, app:read to look); every change commits with its audit entry in one transaction; a request
 * that fails leaves nothing behind (no release, no instance, no upload).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { DEPLOY_STRATEGY_NAMES, isId, newId, newPlacement, toTimestamp, UserError, type Clock, type DeployStrategyName, type Instance, type Release } from '../core/index.ts';
import { formatDiagnostics, normalizeAppConfig, validateAppConfig, type AppConfig, type KillSignal, type RawAppConfig } from '../config/index.ts';
import type { Principal } from '../auth/index.ts';
import { StoreConflictError, type Store } from '../store/index.ts';
import type { Auditor, CallContext } from '../audit/index.ts';
import { instanceCount, place, volumeHost } from '../scheduler/index.ts';
import { contextOf } from './audited.ts';
import type { AppService, AppView } from './apps.ts';

/** DeployImage is what a deploy needs to know about an image (ImageStore's Image has it). */
export interface DeployImage {
  digest: string;
  indexDigest?: string;
  config: { Entrypoint?: string[]; Cmd?: string[]; StopSignal?: string };
  layers: number;
  size: number;
}

/** DeployImages is the image store as deploys use it (ImageStore implements it). */
export interface DeployImages {
  pull(ref: string): Promise<DeployImage>;
  get(digest: string): Promise<DeployImage | undefined>;
}

/** LogEntryView is one journal line as the logs API returns it. */
export interface LogSourceEntry {
  time: string;
  instance: string;
  stream: string;
  message: string;
}

/** LogSource reads instances' journals (the agent's LogJournal implements it). */
export interface LogSource {
  read(instanceIds: readonly string[], options?: { since?: string; limit?: number }): Promise<LogSourceEntry[]>;
  follow(instanceIds: readonly string[], fn: (e: LogSourceEntry) => void): () => void;
}

export const UPLOAD_FORMATS = ['oci-archive', 'docker-archive'] as const;
export type UploadFormat = (typeof UPLOAD_FORMATS)[number];

/** DEFAULT_MAX_UPLOAD_BYTES caps an uploaded image archive: the image store's own limit, 10 GiB. */
export const DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 ** 3;

export interface DeployServiceOptions {
  store: Store;
  clock: Clock;
  apps: AppService;
  audit: Auditor;
  /** images resolves and stores images; without it, uploads and deploys answer `unavailable`. */
  images?: DeployImages;
  /** logs reads journals; without it, logs answer `unavailable`. */
  logs?: LogSource;
  /** uploadDir holds uploads being received and the per-app grants of uploaded images. */
  uploadDir?: string;
  maxUploadBytes?: number;
  /** onDesiredChange tells agents to reconcile (desired state changed). */
  onDesiredChange?: () => void;
  /** onRelease hands a new running release to the Deployer; the deploy answers once it settles (first instances placed). */
  onRelease?: (releaseId: string) => void | Promise<void>;
  /**
   * secretsVersion pins the release's secrets: the app's current secrets version (issue "Secrets"
   * plugs its SecretService in here); null, or absent, when the app has none.
   */
  secretsVersion?: (appId: string) => Promise<number | null>;
}

export interface DeployRequest {
  image: string;
  /** config is ward.toml as parsed (the raw form, as validateAppConfig reads it). */
  config?: unknown;
  strategy?: string;
}

export interface DeployResult {
  app: AppView;
  release: Release;
  instances: Instance[];
  warnings: string[];
}

export interface InstanceStatus extends Instance {
  hostName: string;
  releaseVersion: number;
}

export interface AppStatus {
  app: AppView;
  release: Release | undefined;
  instances: InstanceStatus[];
}

/** MAX_SCALE caps `ward scale count`: more instances of one app than this is taken for a typo. */
export const MAX_SCALE = 100;

/** ScaleView is how many instances of an app run (per region) and the limits a scale keeps. */
export interface ScaleView {
  app: AppView;
  release: Release | undefined;
  count: number;
  regions: Record<string, number>;
  minInstances: number;
  max: number;
}

/** ScaleResult is a ScaleView after a scale, with the instances it placed and stopped. */
export interface ScaleResult extends ScaleView {
  started: string[];
  stopped: string[];
}

export interface UploadResult {
  digest: string;
  layers: number;
  size: number;
  bytes: number;
}

const DIGEST_ONLY = /^(?:sha256:)?([a-f0-9]{64})$/;
const SELECTOR_RE = /^[A-Za-z0-9][A-Za-z0-9._\/@:-]{0,255}$/;
const LOCAL_TRANSPORTS = ['oci-archive:', 'docker-archive:', 'oci:'];

function unavailable(what: string): UserError {
  return new UserError('unavailable', `${what} are not available on this server (it runs without the agent's image store)`, {
    hint: 'run the control plane with its data directory: ward server --roles control,agent',
  });
}

export class DeployService {
  readonly #o: DeployServiceOptions;

  constructor(options: DeployServiceOptions) {
    this.#o = options;
  }

  #now(): string {
    return toTimestamp(this.#o.clock.now());
  }

  /** now is the service's clock (the logs route reads `since=10m` against it). */
  now(): Date {
    return this.#o.clock.now();
  }

  // ---------------------------------------------------------------------------------------------------
  // Uploads

  /**
   * upload receives an image archive (oci-archive or docker-archive) for an app, size-capped, imports it
   * into the image store (verifying every blob) and grants the app its digest. The archive itself is
   * deleted afterwards; a truncated or oversized upload leaves nothing.
   */
  async upload(p: Principal, appRef: string, body: AsyncIterable<Buffer | Uint8Array>, meta: { format: string; selector?: string | undefined; contentLength?: number | undefined }, ctx: CallContext = contextOf(p)): Promise<UploadResult> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:deploy', ctx);
    const { images, uploadDir } = this.#o;
    if (!images || !uploadDir) throw unavailable('image uploads');
    if (!(UPLOAD_FORMATS as readonly string[]).includes(meta.format)) {
      throw new UserError('bad_request', `unknown archive format ${JSON.stringify(meta.format)}`, { hint: `use one of ${UPLOAD_FORMATS.join(', ')}` });
    }
    if (meta.selector !== undefined && !SELECTOR_RE.test(meta.selector)) throw new UserError('bad_request', 'the image name inside the archive is not valid');
    const max = this.#o.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
    if (meta.contentLength !== undefined && meta.contentLength > max) throw tooLarge(meta.contentLength, max);
    await mkdir(join(uploadDir, 'incoming'), { recursive: true, mode: 0o700 });
    const file = join(uploadDir, 'incoming', `${newId('request')}-${randomBytes(4).toString('hex')}.tar`);
    let bytes = 0;
    try {
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          if (bytes > max) done(tooLarge(bytes, max));
          else done(null, chunk);
        },
      });
      await pipeline(body, counter, createWriteStream(file, { mode: 0o600 }));
      if (meta.contentLength !== undefined && bytes !== meta.contentLength) {
        throw new UserError('bad_request', `the upload ended after ${bytes} of ${meta.contentLength} bytes`, { hint: 'upload again' });
      }
      // The path is ours (no colon: the transport reads the path up to the first one).
      const ref = `${meta.format}:${file}${meta.selector ? `:${meta.selector}` : ''}`;
      const image = await images.pull(ref);
      await this.#grant(app.id, image.digest);
      await this.#o.store.transaction(async (tx) => {
        await this.#o.audit.record(tx, ctx, { orgId: app.orgId, action: 'image.upload', target: app.id, outcome: 'success', details: { app: app.name, digest: image.digest, format: meta.format, bytes } });
      });
      return { digest: image.digest, layers: image.layers, size: image.size, bytes };
    } catch (e) {
      if (e instanceof UserError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (e as Error).name === 'AbortError') {
        throw new UserError('bad_request', 'the upload was cut off before its end', { hint: 'upload again', cause: e });
      }
      throw e;
    } finally {
      await rm(file, { force: true });
    }
  }

  #grantPath(appId: string, digest: string): string {
    return join(this.#o.uploadDir!, 'grants', appId, digest.replace(/^sha256:/, ''));
  }

  async #grant(appId: string, digest: string): Promise<void> {
    const f = this.#grantPath(appId, digest);
    await mkdir(join(f, '..'), { recursive: true, mode: 0o700 });
    await writeFile(f, '', { mode: 0o600 });
  }

  /** #granted: the app uploaded this image, or one of its releases ran it. */
  async #granted(appId: string, digest: string): Promise<boolean> {
    if (this.#o.uploadDir && (await stat(this.#grantPath(appId, digest)).then(() => true, () => false))) return true;
    return (await this.#o.store.releases.listForApp(appId)).some((r) => r.imageDigest === digest);
  }

  // ---------------------------------------------------------------------------------------------------
  // Deploys

  /** resolveConfig validates the raw ward.toml (again: the CLI did so too) and checks it fits this app. */
  #resolveConfig(app: AppView, raw: unknown): { config: AppConfig; raw: RawAppConfig; warnings: string[] } {
    const { raw: parsed, diagnostics } = validateAppConfig(raw ?? {});
    const errors = diagnostics.filter((d) => d.severity === 'error');
    if (errors.length > 0 || !parsed) {
      throw new UserError('invalid_config', `the config has ${errors.length === 1 ? '1 error' : `${errors.length} errors`}:\n${formatDiagnostics(errors, 'ward.toml')}`, {
        hint: 'fix ward.toml; docs/ward.reference.toml describes every key',
        details: { diagnostics },
      });
    }
    const config = normalizeAppConfig(parsed);
    if (config.app !== undefined && config.app !== app.name) {
      throw new UserError('invalid_config', `the config is for app "${config.app}", not "${app.name}"`, { hint: `deploy with -a ${config.app}, or change app in ward.toml` });
    }
    const warnings = diagnostics.filter((d) => d.severity === 'warning').map((d) => `${d.path}: ${d.message}`);
    return { config, raw: parsed, warnings };
  }

  /**
   * #volumesHost checks `[[mounts]]` against the app's volumes (issue "Volumes"): each must exist, in
   * primary_region when one is set, and all on one host, which the instances are then pinned to.
   */
  async #volumesHost(app: AppView, config: AppConfig): Promise<string | undefined> {
    let hostId: string | undefined;
    for (const [i, m] of config.mounts.entries()) {
      const v = await this.#o.store.volumes.findByName(app.id, m.source);
      if (!v) {
        throw new UserError('invalid_config', `mounts[${i}].source: app "${app.name}" has no volume "${m.source}"`, { hint: `ward volumes create ${m.source} --size 1gb -a ${app.name}` });
      }
      if (config.primaryRegion !== undefined && v.region !== config.primaryRegion) {
        throw new UserError('invalid_config', `mounts[${i}].source: volume "${m.source}" is in region "${v.region}", not primary_region "${config.primaryRegion}"`, {
          hint: 'create the volume in the app\'s region (ward volumes create --region), or change primary_region',
        });
      }
      if (hostId !== undefined && v.hostId !== hostId) {
        throw new UserError('invalid_config', `mounts[${i}].source: volume "${m.source}" is on another host than the app's other volumes; an instance runs on one host`, {
          hint: 'mount volumes that live on one host (ward volumes show NAME names its host)',
        });
      }
      hostId = v.hostId;
    }
    return hostId;
  }

  /** #strategy: the --strategy flag wins over ward.toml's [deploy] strategy, which defaults to rolling. */
  #strategy(requested: string | undefined, config: AppConfig): DeployStrategyName {
    const asked = requested ?? config.deploy.strategy;
    if ((DEPLOY_STRATEGY_NAMES as readonly string[]).includes(asked)) return asked as DeployStrategyName;
    throw new UserError('bad_request', `unknown deploy strategy ${JSON.stringify(asked)}`, { hint: `use one of ${DEPLOY_STRATEGY_NAMES.join(', ')}` });
  }

  /** #image resolves the deploy's image: a registry reference (pulled here) or an uploaded digest. */
  async #image(app: AppView, ref: string): Promise<{ image: DeployImage; imageRef: string }> {
    const images = this.#o.images;
    if (!images) throw unavailable('deploys');
    const trimmed = ref.trim();
    if (LOCAL_TRANSPORTS.some((t) => trimmed.startsWith(t))) {
      throw new UserError('invalid_image_ref', 'the server does not read image archives from its own disk', {
        hint: '`ward deploy --image oci-archive:PATH` uploads the archive from your machine first',
      });
    }
    const digestOnly = DIGEST_ONLY.exec(trimmed);
    if (digestOnly) {
      const digest = `sha256:${digestOnly[1]}`;
      const image = (await this.#granted(app.id, digest)) ? await images.get(digest) : undefined;
      if (!image) throw new UserError('image_not_found', `image ${digest} was not uploaded for app "${app.name}"`, { hint: 'deploy with --image oci-archive:PATH, which uploads it' });
      return { image, imageRef: digest };
    }
    return { image: await images.pull(trimmed), imageRef: trimmed };
  }

  /**
   * deploy makes release N+1 of the app, `running`, with the number of instances it ends with (as many
   * as run now, at least min_instances and one); the Deployer then places and replaces instances as the
   * release's strategy says (docs/deploys.md). Validation, the image and the placement are settled
   * before anything is written; the release and the `app.deploy` entry commit together.
   */
  async deploy(p: Principal, appRef: string, req: DeployRequest, ctx: CallContext = contextOf(p)): Promise<DeployResult> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:deploy', ctx);
    if (typeof req.image !== 'string' || req.image.trim() === '') throw new UserError('bad_request', 'an image is required', { hint: 'ward deploy --image REF, or set [build] image in ward.toml' });
    const { config: base, raw, warnings } = this.#resolveConfig(app, req.config);
    const strategy = this.#strategy(req.strategy, base);
    const { image, imageRef } = await this.#image(app, req.image);
    if ([...(image.config.Entrypoint ?? []), ...(image.config.Cmd ?? [])].length === 0) {
      throw new UserError('image_invalid', 'the image has no command to run (neither Entrypoint nor Cmd is set)', { hint: 'set ENTRYPOINT or CMD when building the image' });
    }
    // kill_signal from ward.toml wins; else the image's StopSignal (when it is one Ward can send); else SIGTERM.
    const config: AppConfig = raw.kill_signal === undefined ? { ...base, killSignal: stopSignalOf(image.config.StopSignal) ?? base.killSignal } : base;
    const secretsVersion = (await this.#o.secretsVersion?.(app.id)) ?? null;
    const hostId = await this.#volumesHost(app, config);

    return this.#createRelease(p, app, ctx, {
      config, strategy, imageRef, digest: image.digest, secretsVersion, hostId, warnings,
      audit: (release, count) => ({ action: 'app.deploy', details: { app: app.name, version: release.version, image: imageRef, digest: image.digest, strategy, instances: count, secrets_version: secretsVersion } }),
    });
  }

  /**
   * #createRelease makes release N+1 `running` with the number of instances it ends with (as many as
   * run now, at least min_instances and one) and hands it to the Deployer. One deploy at a time per app
   * (`conflict`); placement is settled first (a release no host can take is refused, nothing written);
   * the release and its audit entry commit together. The answer shows the release as the Deployer's
   * first step left it, with the instances placed so far.
   */
  async #createRelease(p: Principal, app: AppView, ctx: CallContext, r: {
    config: AppConfig;
    strategy: DeployStrategyName;
    imageRef: string;
    digest: string;
    secretsVersion: number | null;
    hostId: string | undefined;
    warnings: string[];
    audit: (release: Release, count: number) => { action: string; details: Record<string, unknown> };
  }): Promise<DeployResult> {
    const { config, strategy } = r;
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.#o.store.transaction(async (tx) => {
          const recent = await tx.releases.listForApp(app.id, 5);
          const busy = recent.find((x) => x.status === 'running' || x.status === 'pending');
          if (busy) {
            throw new UserError('conflict', `release v${busy.version} of "${app.name}" is still being deployed`, { hint: 'wait for it to finish (ward status), then deploy again' });
          }
          const running = (await tx.instances.listForApp(app.id, { active: true })).filter((i) => i.desiredState === 'running');
          const count = instanceCount(running.length, config.httpService?.minInstances);
          // Placement is settled here (a deploy no host can take is refused, nothing written); the
          // Deployer then places the instances step by step as the strategy asks.
          place(await tx.hosts.list(), running, { count, resources: config.resources, region: config.primaryRegion, hostId: r.hostId });
          const now = this.#now();
          const release: Release = {
            id: newId('release'),
            appId: app.id,
            version: (recent[0]?.version ?? (await tx.releases.latestVersion(app.id))) + 1,
            imageRef: r.imageRef,
            imageDigest: r.digest,
            config: JSON.stringify(config),
            secretsVersion: r.secretsVersion,
            strategy,
            status: 'running',
            reason: null,
            createdBy: p.userId,
            createdAt: now,
            updatedAt: now,
            targetCount: count,
            previousCount: running.length,
            progress: `0/${count} ${strategy === 'rolling' || strategy === 'canary' ? 'replaced' : 'healthy'}`,
          };
          await tx.releases.create(release);
          const entry = r.audit(release, count);
          await this.#o.audit.record(tx, ctx, { orgId: app.orgId, action: entry.action, target: release.id, outcome: 'success', details: entry.details });
          return { release };
        });
        await this.#o.onRelease?.(result.release.id);
        this.#o.onDesiredChange?.();
        const release = (await this.#o.store.releases.get(result.release.id)) ?? result.release;
        return { app, release, instances: await this.#o.store.instances.listForRelease(release.id), warnings: r.warnings };
      } catch (e) {
        // Two deploys raced for the same version: the loser looks again (and finds the winner running).
        if (e instanceof StoreConflictError && e.constraint === 'releases.app_version' && attempt < 2) continue;
        throw e;
      }
    }
  }

  /**
   * rollback makes a new release from release `version`'s content: its image digest and normalized
   * config, with the app's CURRENT secrets version (a rollback undoes code, not a secret rotation: an
   * old secrets version may hold a revoked credential; docs/deploys.md), deployed with the strategy the
   * app's current release configures. Refused: an unknown version (`not_found`), one that never ran
   * (`bad_request`), a deploy in progress (`conflict`), an image no longer stored (`image_not_found`).
   * Recorded as `app.rollback`.
   */
  async rollback(p: Principal, appRef: string, version: number, ctx: CallContext = contextOf(p)): Promise<DeployResult> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:deploy', ctx);
    const from = await this.#release(app.id, version);
    if (from.status !== 'succeeded' && from.status !== 'rolled_back') {
      throw new UserError('bad_request', `release v${version} never ran (it is ${from.status}); only a release that succeeded can be rolled back to`, { hint: 'ward releases lists them with their status' });
    }
    const images = this.#o.images;
    if (!images) throw unavailable('rollbacks');
    if (!(await images.get(from.imageDigest))) {
      throw new UserError('image_not_found', `the image of release v${version} (${from.imageDigest}) is no longer stored on this server`, { hint: `deploy it again: ward deploy --image ${from.imageRef}` });
    }
    const config = JSON.parse(from.config) as AppConfig;
    const current = (await this.#o.store.releases.listForApp(app.id, 20)).find((r) => r.status === 'succeeded');
    const strategy = this.#strategy(undefined, current ? (JSON.parse(current.config) as AppConfig) : config);
    const secretsVersion = (await this.#o.secretsVersion?.(app.id)) ?? null;
    const hostId = await this.#volumesHost(app, config);
    return this.#createRelease(p, app, ctx, {
      config, strategy, imageRef: from.imageRef, digest: from.imageDigest, secretsVersion, hostId, warnings: [],
      audit: (release, count) => ({ action: 'app.rollback', details: { app: app.name, version: release.version, from_version: version, digest: from.imageDigest, strategy, instances: count, secrets_version: secretsVersion } }),
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Scale

  /** scaleShow: the app's instances that run or should, per region, with its current release and min_instances. */
  async scaleShow(p: Principal, appRef: string, ctx: CallContext = contextOf(p)): Promise<ScaleView> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:read', ctx);
    return this.#scaleView(app);
  }

  async #scaleView(app: AppView): Promise<ScaleView> {
    const running = (await this.#o.store.instances.listForApp(app.id, { active: true })).filter((i) => i.desiredState === 'running');
    const release = await this.#currentRelease(app.id, running);
    const regions: Record<string, number> = {};
    for (const i of running) regions[i.region] = (regions[i.region] ?? 0) + 1;
    const minInstances = release ? ((JSON.parse(release.config) as AppConfig).httpService?.minInstances ?? 0) : 0;
    return { app, release, count: running.length, regions, minInstances, max: MAX_SCALE };
  }

  async #currentRelease(appId: string, running: readonly Instance[]): Promise<Release | undefined> {
    return currentOf(await this.#o.store.releases.listForApp(appId, 20), running);
  }

  /**
   * scale sets how many instances of the current release run: in one region (`region`), or in all.
   * More: new instances placed with `place` (spread over hosts); fewer: the newest extras stop (the
   * edge drains them first). Refused: a count below `[http_service] min_instances`, below 0 or above
   * MAX_SCALE (`bad_request`), during a deploy or with nothing deployed (`conflict`). An app scaled to 0
   * scales up again with its newest succeeded release. The next deploy
   * keeps the count (it starts as many instances as run). Recorded as `app.scale`.
   */
  async scale(p: Principal, appRef: string, req: { count: number; region?: string | undefined }, ctx: CallContext = contextOf(p)): Promise<ScaleResult> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:deploy', ctx);
    const { count, region } = req;
    if (!Number.isInteger(count) || count < 0) throw new UserError('bad_request', `the count must be a whole number, 0 or more, not ${JSON.stringify(count)}`, { hint: 'ward scale count 3' });
    if (count > MAX_SCALE) {
      throw new UserError('bad_request', `${count} instances is more than this Ward scales one app to (${MAX_SCALE})`, { hint: `ask for ${MAX_SCALE} or fewer; more instances of one app than that is likely a typo` });
    }
    const result = await this.#o.store.transaction(async (tx) => {
      const recent = await tx.releases.listForApp(app.id, 20);
      const busy = recent.find((r) => r.status === 'running' || r.status === 'pending');
      if (busy) throw new UserError('conflict', `release v${busy.version} of "${app.name}" is being deployed; scale once it is done`, { hint: 'ward status shows how it goes' });
      const running = (await tx.instances.listForApp(app.id, { active: true })).filter((i) => i.desiredState === 'running');
      const release = currentOf(recent, running);
      if (!release) throw new UserError('conflict', `app "${app.name}" has no release to scale: nothing was deployed yet`, { hint: 'deploy it first: ward deploy' });
      const config = JSON.parse(release.config) as AppConfig;
      const inScope = region === undefined ? running : running.filter((i) => i.region === region);
      const total = running.length - inScope.length + count;
      const min = config.httpService?.minInstances ?? 0;
      if (total < min) {
        throw new UserError('bad_request', `app "${app.name}" needs at least ${min} instance${min === 1 ? '' : 's'} ([http_service] min_instances); ${region === undefined ? count : `${count} in ${region}`} would leave ${total}`, {
          hint: 'lower min_instances in ward.toml and deploy, or scale to more',
        });
      }
      const at = this.#now();
      const started: Instance[] = [];
      let stopped: string[] = [];
      if (count > inScope.length) {
        // An app with [[mounts]] runs where its volumes are.
        const hostId = await volumeHost(tx, app.id, config.mounts);
        const hosts = place(await tx.hosts.list(), running, { count: count - inScope.length, resources: config.resources, region: region ?? config.primaryRegion, hostId });
        for (const h of hosts) started.push(newPlacement({ id: newId('instance'), appId: app.id, releaseId: release.id, hostId: h.id, region: h.region, at }));
        for (const i of started) await tx.instances.create(i);
      } else if (count < inScope.length) {
        // The newest extras go: the longest-running instances have proven themselves.
        stopped = [...inScope].sort((x, y) => (x.createdAt < y.createdAt ? 1 : x.createdAt > y.createdAt ? -1 : x.id < y.id ? 1 : -1)).slice(0, inScope.length - count).map((i) => i.id);
        for (const id of stopped) await tx.instances.setDesired(id, 'stopped', at);
      }
      await this.#o.audit.record(tx, ctx, {
        orgId: app.orgId,
        action: 'app.scale',
        target: app.id,
        outcome: 'success',
        details: { app: app.name, release: release.version, from: running.length, to: total, ...(region === undefined ? {} : { region }), started: started.length, stopped: stopped.length },
      });
      return { started, stopped };
    });
    if (result.started.length > 0 || result.stopped.length > 0) this.#o.onDesiredChange?.();
    return { ...(await this.#scaleView(app)), started: result.started.map((i) => i.id), stopped: result.stopped };
  }

  // ---------------------------------------------------------------------------------------------------
  // Reading

  async #release(appId: string, version: number): Promise<Release> {
    const r = await this.#o.store.releases.findByVersion(appId, version);
    if (!r) throw new UserError('not_found', `release v${version} not found`, { hint: 'ward releases lists them' });
    return r;
  }

  async #withPlaces(instances: Instance[]): Promise<InstanceStatus[]> {
    const hosts = new Map((await this.#o.store.hosts.list()).map((h) => [h.id, h.name]));
    const versions = new Map<string, number>();
    const out: InstanceStatus[] = [];
    for (const i of instances) {
      if (!versions.has(i.releaseId)) versions.set(i.releaseId, (await this.#o.store.releases.get(i.releaseId))?.version ?? 0);
      out.push({ ...i, hostName: hosts.get(i.hostId) ?? i.hostId, releaseVersion: versions.get(i.releaseId)! });
    }
    return out;
  }

  /** status: the app's current release and the instances that run or should (newest release first). */
  async status(p: Principal, appRef: string, ctx: CallContext = contextOf(p)): Promise<AppStatus> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:read', ctx);
    const releases = await this.#o.store.releases.listForApp(app.id, 20);
    const release = releases.find((r) => r.status === 'running' || r.status === 'pending') ?? releases.find((r) => r.status === 'succeeded') ?? releases[0];
    const instances = await this.#withPlaces(await this.#o.store.instances.listForApp(app.id, { active: true }));
    return { app, release, instances };
  }

  async releases(p: Principal, appRef: string, limit: number | undefined, ctx: CallContext = contextOf(p)): Promise<{ app: AppView; releases: Release[] }> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:read', ctx);
    return { app, releases: await this.#o.store.releases.listForApp(app.id, limit) };
  }

  /** release is one release with its instances (what `ward deploy` follows). */
  async release(p: Principal, appRef: string, version: number, ctx: CallContext = contextOf(p)): Promise<{ app: AppView; release: Release; instances: InstanceStatus[] }> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:read', ctx);
    const release = await this.#release(app.id, version);
    return { app, release, instances: await this.#withPlaces(await this.#o.store.instances.listForRelease(release.id)) };
  }

  // ---------------------------------------------------------------------------------------------------
  // Restarts

  /**
   * restart asks for a restart of one instance, or of every instance of the app that should run: each
   * one's restart generation goes up by one, and its agent stops and starts it (kill signal,
   * kill_timeout). A failed instance starts afresh. Recorded as `app.restart`.
   */
  async restart(p: Principal, appRef: string, instanceId: string | undefined, ctx: CallContext = contextOf(p)): Promise<{ app: AppView; instances: InstanceStatus[] }> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:deploy', ctx);
    if (instanceId !== undefined && !isId(instanceId, 'instance')) throw new UserError('bad_request', `${JSON.stringify(instanceId)} is not an instance id`, { hint: 'ward status lists the instances (ins_…)' });
    const ids = await this.#o.store.transaction(async (tx) => {
      let targets = (await tx.instances.listForApp(app.id, { active: true })).filter((i) => i.desiredState === 'running');
      if (instanceId !== undefined) {
        targets = targets.filter((i) => i.id === instanceId);
        if (targets.length === 0) throw new UserError('not_found', `instance ${instanceId} of app "${app.name}" not found, or not meant to run`, { hint: 'ward status lists the instances' });
      }
      if (targets.length === 0) throw new UserError('conflict', `app "${app.name}" has no instances to restart`, { hint: 'deploy it first: ward deploy' });
      const at = this.#now();
      for (const i of targets) await tx.instances.requestRestart(i.id, at);
      await this.#o.audit.record(tx, ctx, { orgId: app.orgId, action: 'app.restart', target: app.id, outcome: 'success', details: { app: app.name, instances: targets.map((i) => i.id) } });
      return targets.map((i) => i.id);
    });
    this.#o.onDesiredChange?.();
    const all = await this.#o.store.instances.listForApp(app.id, { active: true });
    return { app, instances: await this.#withPlaces(all.filter((i) => ids.includes(i.id))) };
  }

  // ---------------------------------------------------------------------------------------------------
  // Logs

  /** #logInstances picks whose logs to read: one instance of the app, or its most recent 50. */
  async #logInstances(appId: string, appName: string, instanceId: string | undefined): Promise<string[]> {
    const all = await this.#o.store.instances.listForApp(appId);
    if (instanceId !== undefined) {
      if (!all.some((i) => i.id === instanceId)) throw new UserError('not_found', `instance ${instanceId} of app "${appName}" not found`, { hint: 'ward status lists the instances' });
      return [instanceId];
    }
    return all.slice(-50).map((i) => i.id);
  }

  /** logs reads the app's journal lines (all its recent instances, or one), oldest first. */
  async logs(p: Principal, appRef: string, q: { instance?: string | undefined; since?: string | undefined; limit?: number | undefined }, ctx: CallContext = contextOf(p)): Promise<{ app: AppView; instances: string[]; entries: LogSourceEntry[] }> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:read', ctx);
    if (!this.#o.logs) throw unavailable('logs');
    const instances = await this.#logInstances(app.id, app.name, q.instance);
    const entries = await this.#o.logs.read(instances, { ...(q.since ? { since: q.since } : {}), ...(q.limit ? { limit: q.limit } : {}) });
    return { app, instances, entries };
  }

  /**
   * follow subscribes to new lines of the app's instances (or one); instances placed after the call
   * started are picked up too. It returns the unsubscribe.
   */
  async follow(p: Principal, appRef: string, instanceId: string | undefined, fn: (e: LogSourceEntry) => void, ctx: CallContext = contextOf(p)): Promise<() => void> {
    const app = await this.#o.apps.resolve(p, appRef, 'app:read', ctx);
    const logs = this.#o.logs;
    if (!logs) throw unavailable('logs');
    let ids = await this.#logInstances(app.id, app.name, instanceId);
    let unsubscribe = logs.follow(ids, fn);
    let closed = false;
    // A deploy or restart of the app adds instances while someone follows: look for them now and then.
    const timer = instanceId === undefined
      ? setInterval(() => {
        void this.#logInstances(app.id, app.name, undefined).then((next) => {
          if (closed || (next.length === ids.length && next.every((id, i) => id === ids[i]))) return;
          ids = next;
          unsubscribe();
          unsubscribe = logs.follow(ids, fn);
        }, () => {});
      }, 1000)
      : undefined;
    timer?.unref();
    return () => {
      closed = true;
      if (timer) clearInterval(timer);
      unsubscribe();
    };
  }
}

/**
 * currentOf picks the release a scale adds instances of: the newest succeeded release that has
 * instances meant to run, else (an app scaled to 0) the newest succeeded one.
 */
function currentOf(releases: readonly Release[], running: readonly Instance[]): Release | undefined {
  return releases.find((r) => r.status === 'succeeded' && running.some((i) => i.releaseId === r.id)) ?? releases.find((r) => r.status === 'succeeded');
}

function tooLarge(bytes: number, max: number): UserError {
  return new UserError('payload_too_large', `the image archive is larger than this server accepts (${max} bytes)`, {
    hint: 'make the image smaller, or raise the server\'s upload limit',
    details: { limit: max, received: bytes },
  });
}

const STOP_SIGNALS: readonly string[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'];

/** stopSignalOf reads an image's StopSignal (`SIGQUIT`, `QUIT`, `3`) as a signal kill_signal allows, or undefined. */
export function stopSignalOf(s: string | undefined): KillSignal | undefined {
  const raw = s?.trim().toUpperCase();
  if (!raw) return undefined;
  const name = /^\d+$/.test(raw) ? Object.entries(constants.signals).find(([, n]) => n === Number(raw))?.[0] : raw.startsWith('SIG') ? raw : `SIG${raw}`;
  return name !== undefined && STOP_SIGNALS.includes(name) ? (name as KillSignal) : undefined;
}

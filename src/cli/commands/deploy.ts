import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse } from 'smol-toml';
import { formatSize, UserError } from '../../core/index.ts';
import type { AppConfig } from '../../config/index.ts';
import { apiPath } from '../client.ts';
import { defineCommand, jsonFlag, type Context } from '../command.ts';
import { localImage } from '../image-archive.ts';
import { followRelease, printInstances, type ApiInstance, type ApiRelease } from './deploy-fields.ts';

interface DeployAnswer {
  release: ApiRelease;
  instances: ApiInstance[];
  warnings: string[];
}

/** loadConfig reads, validates (locally, before any request) and returns ward.toml in both forms. */
async function loadConfig(ctx: Context, flag: string | undefined): Promise<{ raw: Record<string, unknown>; config: AppConfig; file: string } | undefined> {
  const file = flag === undefined ? join(ctx.cwd, 'ward.toml') : resolve(ctx.cwd, flag);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && flag === undefined) return undefined;
    throw new UserError('invalid_config', code === 'ENOENT' ? `${file} does not exist` : `cannot read ${file}: ${(e as Error).message}`, { hint: 'pass the path of your ward.toml: --config PATH' });
  }
  const shown = flag ?? 'ward.toml';
  // The app config's schema (zod) loads only for commands that read a ward.toml.
  const { assertValidAppConfig, formatDiagnostics, parseAppConfig } = await import('../../config/app-config.ts');
  const result = parseAppConfig(text, shown);
  const config = assertValidAppConfig(result, shown);
  const warnings = result.diagnostics.filter((d) => d.severity === 'warning');
  if (warnings.length) ctx.out.info(formatDiagnostics(warnings, shown));
  // The server validates again; it gets the document as written, the form validateAppConfig reads.
  const raw = parse(text.startsWith('\uFEFF') ? text.slice(1) : text) as Record<string, unknown>;
  return { raw, config, file };
}

export default defineCommand({
  name: 'deploy',
  summary: 'Deploy an image as a new release of the app',
  description: [
    'Reads ./ward.toml (or --config), validates it, and deploys the image from --image or [build] image.',
    'A registry reference is pulled by the server; a local archive (oci-archive:PATH, docker-archive:PATH,',
    'oci:DIR) is uploaded from this machine first. The release then replaces the running one with its',
    'strategy (--strategy, else [deploy] strategy, else rolling): rolling starts max_unavailable new',
    'instances and stops as many old ones once they are healthy, canary starts one first, bluegreen starts a',
    'full new set and switches once all are healthy, immediate starts all and stops the old once all are',
    'healthy. If a new instance never gets healthy, the release fails, the previous one keeps serving, and',
    'the command exits 1 with the instance\'s last log lines. See docs/deploys.md.',
    'Progress goes to stderr; --json prints a summary on stdout; --detach returns once the release is made.',
  ].join('\n'),
  flags: {
    app: { type: 'string', short: 'a', placeholder: 'APP', description: 'The app (default: the app of ward.toml)' },
    config: { type: 'string', placeholder: 'PATH', description: 'The ward.toml to deploy (default ./ward.toml)' },
    image: { type: 'string', placeholder: 'REF', description: 'The image: registry/app:tag, …@sha256:…, oci-archive:PATH, docker-archive:PATH or oci:DIR' },
    strategy: { type: 'string', placeholder: 'NAME', choices: ['rolling', 'canary', 'bluegreen', 'immediate'], description: 'How to replace the running release (default: [deploy] strategy in ward.toml, else rolling)' },
    detach: { type: 'boolean', description: 'Return once the release is made, without waiting for it' },
    json: jsonFlag,
  },
  requireSession: true,
  examples: ['ward deploy --image registry.example.com/portal:1.4.2', 'ward deploy --image oci-archive:./app.tar', 'ward deploy -a portal --config deploy/ward.toml --detach --json'],
  async run(ctx, { flags }) {
    const started = Date.now();
    const loaded = await loadConfig(ctx, flags.config);
    const app = flags.app || loaded?.config.app;
    if (!app) throw new UserError('usage', 'no app given, and ward.toml names none', { hint: 'pass -a APP, or add app = "NAME" to ward.toml' });
    const imageRef = flags.image ?? loaded?.config.build.image;
    if (!imageRef) throw new UserError('usage', 'no image to deploy', { hint: 'pass --image REF, or set image under [build] in ward.toml' });
    const step = (m: string) => ctx.out.info(`--> ${m}`);

    let image = imageRef;
    const local = await localImage(imageRef, ctx.cwd);
    if (local) {
      step(`Uploading ${local.label} (${formatSize(local.size)})`);
      const q = new URLSearchParams({ format: local.format });
      if (local.selector) q.set('name', local.selector);
      const up = await ctx.api.upload<{ image: { digest: string; layers: number } }>(`${apiPath`/v1/apps/${app}/images`}?${q}`, local.body(), { contentType: 'application/octet-stream', size: local.size });
      image = up.image.digest;
      step(`Image resolved: ${up.image.digest} (${up.image.layers} layer${up.image.layers === 1 ? '' : 's'})`);
    } else {
      step(`Resolving ${imageRef}`);
    }

    const body: Record<string, unknown> = { image, config: loaded?.raw ?? { app } };
    if (flags.strategy) body.strategy = flags.strategy;
    // The server pulls a registry image before it answers: that may take a while for a big one.
    const made = await ctx.api.post<DeployAnswer>(apiPath`/v1/apps/${app}/deploy`, body, { timeoutMs: 30 * 60_000 });
    for (const w of made.warnings) ctx.out.info(`Warning: ${w}`);
    if (!local) step(`Image resolved: ${made.release.digest}`);
    const n = made.release.target_count ?? made.instances.length;
    step(`Release v${made.release.version} created (${made.release.strategy}): starting ${n} instance${n === 1 ? '' : 's'}`);
    if (flags.detach) {
      ctx.out.result({ app, release: made.release, instances: made.instances }, () => printInstances(ctx.out, made.instances));
      return;
    }
    // Follow the release until it is over; the server fails it after wait_timeout, so this ends.
    await followRelease(ctx, app, made, { started, waitMs: (loaded?.config.deploy.waitTimeoutMs ?? 5 * 60_000) + 60_000 });
  },
});

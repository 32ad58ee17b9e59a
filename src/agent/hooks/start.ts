/**
 * The start hook: runs the instance's process in the runtime, with its output captured to the journal.
 *
 * prestart: builds the InstanceSpec (command, env, user and working dir from the image and the
 * release; limits from `[resources]`; the network attachment; mounts) and calls runtime.start. The
 * instance's stdout and stderr go to capture files the agent owns, which OutputCapture reads into the
 * journal. A leftover container with the instance's id (a run that ended) is destroyed first. The
 * runtime leaves a running instance or nothing.
 * recover: takes the running process as it is (same pid) and resumes reading its output.
 * prestop: stops the process: the release's kill signal (kill_signal, else the image's StopSignal,
 * resolved at deploy time), then SIGKILL after kill_timeout.
 * exited: reads the rest of the run's output and destroys the container, so the id can run again.
 * poststop: the same, and stops reading output for good. detach: stops reading, leaves the process.
 * The env (secrets included) goes to the runtime only; nothing here logs it.
 */
import { DEFAULT_PIDS_LIMIT, type InstanceSpec, type Runtime } from '../runtime/index.ts';
import { LogJournal, OutputCapture, type CaptureOptions } from '../logs/index.ts';
import { commandOf, instanceEnv, platformEnv, resolveUser, workingDir } from '../spec.ts';
import type { HookContext, InstanceHook } from './types.ts';

export interface StartHookDeps {
  runtime: Runtime;
  journal: LogJournal;
  capture?: CaptureOptions;
  /** pids caps each instance's tasks; default DEFAULT_PIDS_LIMIT. */
  pids?: number;
}

/** buildSpec assembles what the runtime needs from the context the earlier hooks filled in. */
export async function buildSpec(ctx: HookContext, journal: LogJournal, pids: number): Promise<InstanceSpec> {
  const image = ctx.image;
  if (!image) throw new Error('start hook: no image in the context (the image hook runs first)');
  const { release, app, instance } = ctx.assignment;
  const config = ctx.config;
  const attachment = ctx.attachment;
  const platform = platformEnv({
    appName: app.name,
    instanceId: ctx.instanceId,
    releaseVersion: release.version,
    region: instance.region,
    hostName: ctx.host.name,
    privateIpv6: attachment?.ipv6,
    privateIpv4: attachment?.ipv4,
  });
  const files = journal.outputFiles(ctx.instanceId);
  return {
    id: ctx.instanceId,
    rootfs: image.rootfs,
    process: {
      args: commandOf(image.config),
      env: instanceEnv(image.config, config, ctx.secretEnv, platform),
      cwd: workingDir(image.config),
      user: await resolveUser(image.config.User, image.rootfs),
    },
    resources: { memoryBytes: config.resources.memoryBytes, cpus: config.resources.cpus, pids },
    ...(attachment ? { network: { netnsPath: attachment.netnsPath, addresses: attachment.addresses } } : {}),
    // The network's internal resolver, when it has one (issue "Private networking").
    ...(attachment?.nameservers?.length ? { dns: { nameservers: attachment.nameservers, search: [] } } : {}),
    mounts: ctx.mounts,
    stdout: { file: files.stdout },
    stderr: { file: files.stderr },
    hostname: ctx.instanceId,
    labels: { 'ward.app': app.id, 'ward.release': release.id, 'ward.version': String(release.version), 'ward.org': app.orgId },
  };
}

export function startHook(deps: StartHookDeps): InstanceHook {
  const { runtime, journal } = deps;
  const captures = new Map<string, OutputCapture>();
  const capture = async (id: string) => {
    let c = captures.get(id);
    if (!c) {
      c = new OutputCapture(journal, id, deps.capture);
      captures.set(id, c);
    }
    await c.start();
    return c;
  };
  const release = async (ctx: HookContext, forGood: boolean) => {
    const c = captures.get(ctx.instanceId) ?? (forGood ? undefined : await capture(ctx.instanceId));
    await c?.flush(true).catch(() => {});
    if (forGood) {
      await c?.stop();
      captures.delete(ctx.instanceId);
    }
    await runtime.destroy(ctx.instanceId);
    delete ctx.handle;
  };
  return {
    name: 'start',
    async prestart(ctx) {
      const spec = await buildSpec(ctx, journal, deps.pids ?? DEFAULT_PIDS_LIMIT);
      await capture(ctx.instanceId);
      // A run that ended leaves its container until destroyed; the id must be free to start again.
      if (await runtime.inspect(ctx.instanceId)) await runtime.destroy(ctx.instanceId);
      ctx.handle = await runtime.start(spec);
    },
    async recover(ctx, info) {
      await capture(ctx.instanceId);
      ctx.handle = { id: info.id, pid: info.pid ?? 0, startedAt: info.startedAt };
    },
    async prestop(ctx) {
      if (!(await runtime.inspect(ctx.instanceId))) return;
      await runtime.stop(ctx.instanceId, { signal: ctx.config.killSignal, timeoutMs: ctx.config.killTimeoutMs });
    },
    exited: (ctx) => release(ctx, false),
    poststop: (ctx) => release(ctx, true),
    async detach(ctx) {
      await captures.get(ctx.instanceId)?.stop();
      captures.delete(ctx.instanceId);
    },
  };
}

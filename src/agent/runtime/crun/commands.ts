/**
 * Every command CrunRuntime runs, as argv arrays built by pure functions (tested by equality in
 * commands.test.ts). Values reach the programs as arguments, never through a shell; the two helper
 * scripts (monitor.sh, hybrid-cgroups.sh) are fixed files that take their values as arguments too.
 */
import { fileURLToPath } from 'node:url';
import type { Argv } from '../../../exec/index.ts';
import type { CgroupLayout } from './cgroups.ts';

/** MONITOR_SCRIPT records an instance's exit status in a file (see monitor.sh). */
export const MONITOR_SCRIPT = fileURLToPath(new URL('../monitor.sh', import.meta.url));
/** HYBRID_SCRIPT hides the cgroup2 mount from crun on hybrid hosts (see hybrid-cgroups.sh). */
export const HYBRID_SCRIPT = fileURLToPath(new URL('./hybrid-cgroups.sh', import.meta.url));
export const SH = '/bin/sh';

/** CrunContext is what every crun invocation shares. */
export interface CrunContext {
  /** crun is the program: a name looked up in PATH or an absolute path. */
  crun: string;
  /** stateDir is crun's `--root`: Ward's own, on tmpfs, apart from any other crun user's. */
  stateDir: string;
  layout: CgroupLayout;
  hybridScript?: string;
}

/**
 * crunArgv builds `crun --root STATE [--log …] ARGS`. On a hybrid host it is wrapped as
 * `unshare --mount --propagation private -- /bin/sh hybrid-cgroups.sh UNIFIED crun …`, a fresh private
 * mount namespace per invocation, so that every mount the host made until then (netns files, image
 * snapshots) is visible to crun while the cgroup2 mount is not.
 */
export function crunArgv(ctx: CrunContext, args: readonly string[], logFile?: string): Argv {
  const crun: [string, ...string[]] = [ctx.crun, '--root', ctx.stateDir, '--cgroup-manager=cgroupfs'];
  if (logFile) crun.push(`--log=file:${logFile}`);
  crun.push(...args);
  if (ctx.layout.mode !== 'hybrid') return crun;
  return ['unshare', '--mount', '--propagation', 'private', '--', SH, ctx.hybridScript ?? HYBRID_SCRIPT, ctx.layout.unifiedMount, ...crun];
}

/**
 * crunRunArgv runs the container in the foreground: crun stays its parent, reaps it, deletes it when it
 * ends and exits with its status (128+N after signal N), which the monitor records.
 */
export function crunRunArgv(ctx: CrunContext, o: { id: string; bundle: string; pidFile: string; logFile: string }): Argv {
  return crunArgv(ctx, ['run', '--bundle', o.bundle, '--pid-file', o.pidFile, '--no-new-keyring', o.id], o.logFile);
}

/** crunKillArgv signals the container's init (which forwards to the app; SIGKILL ends the whole pid namespace). */
export function crunKillArgv(ctx: CrunContext, id: string, signal: string): Argv {
  return crunArgv(ctx, ['kill', id, signal.replace(/^SIG/, '')]);
}

/** crunDeleteArgv removes the container's state and cgroup; force kills it first if it still runs. */
export function crunDeleteArgv(ctx: CrunContext, id: string): Argv {
  return crunArgv(ctx, ['delete', '--force', id]);
}

/** crunStateArgv prints the container's state as JSON (status, pid, bundle). */
export function crunStateArgv(ctx: CrunContext, id: string): Argv {
  return crunArgv(ctx, ['state', id]);
}

/** crunListArgv lists the containers in Ward's state dir (quiet: ids only). */
export function crunListArgv(ctx: CrunContext): Argv {
  return crunArgv(ctx, ['list', '--quiet']);
}

/**
 * crunExecArgv runs a process in the container from a full process.json (user, capabilities,
 * noNewPrivileges, env, rlimits all spelled out), so nothing is inherited by accident: plain
 * `crun exec` would leave no_new_privs off.
 */
export function crunExecArgv(ctx: CrunContext, id: string, processFile: string): Argv {
  return crunArgv(ctx, ['exec', '--process', processFile, id]);
}

/** monitorArgv wraps a command in the monitor script, which writes its exit status to exitFile. */
export function monitorArgv(exitFile: string, command: Argv, monitorScript: string = MONITOR_SCRIPT): Argv {
  return [SH, monitorScript, exitFile, ...command];
}

/** overlayMountArgv mounts the instance's root: the image read-only below, a tmpfs directory above. */
export function overlayMountArgv(o: { lower: string; upper: string; work: string; target: string }): Argv {
  for (const p of [o.lower, o.upper, o.work]) {
    // The option string is parsed by the kernel: a comma or colon would split it.
    if (/[,:\\]/.test(p)) throw new Error(`path unusable in overlay options: ${JSON.stringify(p)}`);
  }
  return ['mount', '-t', 'overlay', '-o', `lowerdir=${o.lower},upperdir=${o.upper},workdir=${o.work}`, 'overlay', o.target];
}

/** tmpfsMountArgv mounts a tmpfs for Ward's own state (bundles with env values, crun state). */
export function tmpfsMountArgv(target: string, mode: string): Argv {
  return ['mount', '-t', 'tmpfs', '-o', `mode=${mode},nosuid,nodev`, 'ward-run', target];
}

/** umountArgv unmounts one mount point; lazy detaches it now and frees it when no longer busy. */
export function umountArgv(target: string, options: { lazy?: boolean } = {}): Argv {
  return options.lazy ? ['umount', '--lazy', target] : ['umount', target];
}

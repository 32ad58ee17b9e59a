import { readFileSync } from 'node:fs';
import { run } from '../../exec/index.ts';
import { umountArgv } from './commands.ts';

// Mount points escape space, tab, newline and backslash as octal (\040…) in mountinfo (proc(5)).
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** mountPoints lists the mount points of a mountinfo text (field 5 of each line). */
export function mountPoints(mountinfo: string): string[] {
  return mountinfo.split('\n').filter(Boolean).map((l) => unescape(l.split(' ')[4] ?? ''));
}

/** mounted reports whether something is mounted on path in this process's mount namespace. */
export function mounted(path: string): boolean {
  return mountPoints(readFileSync('/proc/self/mountinfo', 'utf8')).includes(path);
}

/** unmount unmounts target, lazily when it stays busy (a process still holding a file open in it). */
export async function unmount(target: string): Promise<void> {
  if (!mounted(target)) return;
  const r = await run(umountArgv(target), { allowFailure: true });
  if (r.code !== 0 && mounted(target)) await run(umountArgv(target, { lazy: true }));
}

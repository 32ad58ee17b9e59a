/**
 * Telling an OOM kill from any other SIGKILL. crun reports only exit 137, and it deletes the instance's
 * cgroup (with memory.oom_control's `oom_kill` counter) as the instance ends, before anyone can read
 * it. The kernel's log keeps the fact: each memory-cgroup OOM kill logs a line
 * `oom-kill:constraint=CONSTRAINT_MEMCG,…,oom_memcg=/ward/ins_…,task_memcg=…,task=node,pid=…`
 * naming the cgroup, under v1 and v2 alike. Ward reads /dev/kmsg (root only) when an instance ends
 * with 137 and looks for that line since the instance started.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';

/** KmsgRecord is one /dev/kmsg record: its timestamp (microseconds since boot) and text. */
export interface KmsgRecord {
  usec: number;
  message: string;
}

/** parseKmsgRecord reads `PRI,SEQ,USEC,FLAGS[,…];MESSAGE` (Documentation/ABI/testing/dev-kmsg). */
export function parseKmsgRecord(raw: string): KmsgRecord | undefined {
  const semi = raw.indexOf(';');
  if (semi < 0) return undefined;
  const usec = Number(raw.slice(0, semi).split(',')[2]);
  if (!Number.isFinite(usec)) return undefined;
  // Continuation lines (" SUBSYSTEM=…") follow the message after a newline.
  return { usec, message: raw.slice(semi + 1).split('\n')[0]! };
}

/**
 * oomKilledIn reports whether the records hold an OOM kill charged to exactly this cgroup at or after
 * sinceUsec. Matching `oom_memcg=` exactly (followed by a comma) keeps `/ward/ins_a` from matching
 * `/ward/ins_ab`.
 */
export function oomKilledIn(records: readonly KmsgRecord[], cgroupsPath: string, sinceUsec: number): boolean {
  const needle = `oom_memcg=${cgroupsPath},`;
  return records.some((r) => r.usec >= sinceUsec && r.message.startsWith('oom-kill:') && r.message.includes(needle));
}

/**
 * readKmsg returns the records the kernel still holds. /dev/kmsg gives one record per read and EAGAIN
 * at the end when opened non-blocking; EPIPE means a record was overwritten while reading, and reading
 * goes on from the next.
 */
export function readKmsg(path = '/dev/kmsg'): KmsgRecord[] {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(16 * 1024);
  const out: KmsgRecord[] = [];
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') continue;
        if (code === 'EAGAIN') break;
        throw e;
      }
      if (n <= 0) break;
      const r = parseKmsgRecord(buf.toString('utf8', 0, n));
      if (r) out.push(r);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/**
 * OutputCapture turns an instance's stdout and stderr into journal lines. The runtime appends the
 * app's output to two files the agent owns (never a pipe: a pipe whose reader is gone blocks or kills
 * the app, and the app must outlive the agent). The capture reads each file from where it last stopped,
 * splits complete lines, stamps them and appends them to the journal, then records how far it read
 * (cursor.json), so an agent restart neither loses nor (beyond one batch) repeats lines.
 *
 * The files stay bounded without losing anything: the part already read is freed with
 * `fallocate --punch-hole`, which releases the disk blocks but keeps the file's offsets, so the app's
 * O_APPEND writes and our cursor stay valid. Where the filesystem cannot punch holes, a file read to
 * its end is truncated once it passes truncateBytes (a copytruncate, which can lose the few bytes
 * written between the last read and the truncate; the agent logs that it fell back).
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type Argv } from '../../exec/index.ts';
import { writeAtomic } from '../files.ts';
import type { LogJournal, LogLine } from './journal.ts';

export interface CaptureOptions {
  /** pollMs is the safety-net poll beside inotify; default 250 ms. */
  pollMs?: number;
  /** punchBytes: free the read part of a file each time this much more was read; default 1 MiB. */
  punchBytes?: number;
  /** truncateBytes: without hole punching, truncate a fully read file past this size; default 64 MiB. */
  truncateBytes?: number;
  /** onWarning hears about fallbacks (no hole punching); the agent logs it. */
  onWarning?: (message: string) => void;
}

type Stream = 'stdout' | 'stderr';

interface Cursor {
  stdout: number;
  stderr: number;
}

/** punchHoleArgv frees the first `length` bytes of a file without changing its size (util-linux fallocate). */
export function punchHoleArgv(file: string, length: number): Argv {
  return ['fallocate', '--punch-hole', '--offset', '0', '--length', String(length), file];
}

const READ_CHUNK = 1024 * 1024;
const BLOCK = 4096;

export class OutputCapture {
  readonly #journal: LogJournal;
  readonly #id: string;
  readonly #files: Record<Stream, string>;
  readonly #cursorFile: string;
  readonly #o: Required<Omit<CaptureOptions, 'onWarning'>> & Pick<CaptureOptions, 'onWarning'>;
  #cursor: Cursor = { stdout: 0, stderr: 0 };
  #punched: Cursor = { stdout: 0, stderr: 0 };
  #canPunch = true;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #pending = false;
  #started = false;

  constructor(journal: LogJournal, id: string, options: CaptureOptions = {}) {
    this.#journal = journal;
    this.#id = id;
    this.#files = journal.outputFiles(id);
    this.#cursorFile = join(journal.instanceDir(id), 'cursor.json');
    this.#o = { pollMs: 250, punchBytes: 1024 * 1024, truncateBytes: 64 * 1024 * 1024, ...options };
  }

  /** start loads the cursor and begins reading whatever the files hold and will hold. Idempotent. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const dir = await this.#journal.ensure(this.#id);
    try {
      const c = JSON.parse(await readFile(this.#cursorFile, 'utf8')) as Partial<Cursor>;
      this.#cursor = { stdout: Number(c.stdout) || 0, stderr: Number(c.stderr) || 0 };
    } catch {
      // First start: read from the beginning.
    }
    try {
      this.#watcher = watch(dir, () => this.#kick());
      this.#watcher.on('error', () => {});
      this.#watcher.unref();
    } catch {
      // The poll covers it.
    }
    this.#timer = setInterval(() => this.#kick(), this.#o.pollMs);
    this.#timer.unref();
    this.#kick();
  }

  /** #kick schedules a read pass; passes never overlap, and kicks during one coalesce into one more. */
  #kick(): void {
    if (this.#pending) return;
    this.#pending = true;
    this.#running = this.#running.then(async () => {
      this.#pending = false;
      await this.#pass(false).catch((e: unknown) => this.#o.onWarning?.(`reading output of ${this.#id} failed: ${(e as Error).message}`));
    });
  }

  /**
   * flush reads everything written so far. With final (the instance's run ended), a last line without
   * a newline is taken too.
   */
  async flush(final = false): Promise<void> {
    const p = this.#running.then(() => this.#pass(final));
    this.#running = p.catch(() => {});
    await p;
  }

  /** stop reads what is left and stops watching. */
  async stop(): Promise<void> {
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#started) await this.flush(true).catch(() => {});
    this.#started = false;
  }

  async #pass(final: boolean): Promise<void> {
    const lines: LogLine[] = [];
    const before = { ...this.#cursor };
    for (const s of ['stdout', 'stderr'] as const) await this.#readStream(s, final, lines);
    if (lines.length > 0) await this.#journal.append(this.#id, lines);
    if (before.stdout !== this.#cursor.stdout || before.stderr !== this.#cursor.stderr) {
      await writeAtomic(this.#cursorFile, JSON.stringify(this.#cursor));
      for (const s of ['stdout', 'stderr'] as const) await this.#reclaim(s);
    }
  }

  async #readStream(s: Stream, final: boolean, out: LogLine[]): Promise<void> {
    let fh;
    try {
      fh = await open(this.#files[s], 'r');
    } catch {
      return; // Not created yet.
    }
    try {
      const size = (await fh.stat()).size;
      // Someone truncated the file (or it was replaced): start over from its beginning.
      if (size < this.#cursor[s]) this.#cursor[s] = 0;
      const max = this.#journal.limits.maxLineBytes;
      while (this.#cursor[s] < size) {
        const len = Math.min(READ_CHUNK, size - this.#cursor[s]);
        const buf = Buffer.alloc(len);
        const { bytesRead } = await fh.read(buf, 0, len, this.#cursor[s]);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        const time = new Date().toISOString();
        let start = 0;
        for (;;) {
          const nl = chunk.indexOf(0x0a, start);
          if (nl === -1) break;
          out.push({ time, stream: s, message: chunk.subarray(start, nl).toString('utf8').replace(/\r$/, '') });
          start = nl + 1;
        }
        const rest = chunk.length - start;
        const atEnd = this.#cursor[s] + bytesRead >= size;
        // A partial line is kept for the next pass, unless it is already too long or the run is over.
        if (rest > 0 && (rest >= max || (final && atEnd))) {
          out.push({ time, stream: s, message: chunk.subarray(start).toString('utf8') });
          start = chunk.length;
        }
        this.#cursor[s] += start;
        if (start === 0) break; // a partial line alone: wait for more
      }
    } finally {
      await fh.close();
    }
  }

  /** #reclaim frees the part of a capture file that has been read. */
  async #reclaim(s: Stream): Promise<void> {
    const upTo = Math.floor(this.#cursor[s] / BLOCK) * BLOCK;
    if (this.#canPunch) {
      if (upTo - this.#punched[s] < this.#o.punchBytes) return;
      const r = await run(punchHoleArgv(this.#files[s], upTo), { allowFailure: true, timeoutMs: 10_000 }).catch(() => undefined);
      if (r && r.code === 0) {
        this.#punched[s] = upTo;
        return;
      }
      this.#canPunch = false;
      this.#o.onWarning?.(`cannot punch holes in ${this.#files[s]} (${r?.stderr.trim() || 'fallocate failed'}); truncating read output files instead`);
    }
    const size = (await stat(this.#files[s]).catch(() => undefined))?.size ?? 0;
    if (size >= this.#o.truncateBytes && this.#cursor[s] === size) {
      await truncate(this.#files[s], 0);
      this.#cursor[s] = 0;
      await writeAtomic(this.#cursorFile, JSON.stringify(this.#cursor));
    }
  }
}

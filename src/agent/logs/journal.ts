/**
 * LogJournal keeps each instance's output on disk, bounded: line-oriented NDJSON files with a timestamp
 * and a stream per line, rotated by size. One journal per agent holds every instance's, under
 *
 *   <dir>/<ins_…>/journal.ndjson      the current file, appended to
 *   <dir>/<ins_…>/journal.1.ndjson …  older files, up to limits.files in all
 *   <dir>/<ins_…>/stdout, stderr      capture files the runtime writes (OutputCapture reads them)
 *   <dir>/<ins_…>/cursor.json         how far the capture files have been read
 *
 * The journal outlives the instance's runs (restarts append to it) and the agent (it is on disk); an
 * instance's journal goes when the instance is pruned. Entries are what the app wrote: the agent never
 * writes env values or secrets here, only its own short `ward` lines about starts, exits and restarts.
 */
import { EventEmitter } from 'node:events';
import { appendFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isId } from '../../core/index.ts';

/**
 * LogStream is where a line came from: the app's stdout or stderr, the agent (`ward`), or the edge
 * (`edge`: one JSON access-log line per request the instance answered through the edge).
 */
export type LogStream = 'stdout' | 'stderr' | 'ward' | 'edge';

/** LogLine is one line of one instance's journal. */
export interface LogLine {
  /** time is when the agent read the line (ISO-8601 UTC, milliseconds). */
  time: string;
  stream: LogStream;
  message: string;
}

/** LogEntry is a LogLine with the instance it belongs to, as readers get it. */
export interface LogEntry extends LogLine {
  instance: string;
}

/** JournalLimits bound each instance's journal on disk. */
export interface JournalLimits {
  /** fileBytes rotates the current file once it is this large. */
  fileBytes: number;
  /** files is how many files (the current one included) are kept; older ones are deleted. */
  files: number;
  /** maxLineBytes splits longer lines (a line without a newline for this long is cut here). */
  maxLineBytes: number;
}

/** DEFAULT_JOURNAL_LIMITS: 3 files of 4 MiB, so at most about 12 MiB per instance; lines cut at 16 KiB. */
export const DEFAULT_JOURNAL_LIMITS: JournalLimits = { fileBytes: 4 * 1024 * 1024, files: 3, maxLineBytes: 16 * 1024 };

export interface ReadOptions {
  /** since keeps lines at or after this time (ISO-8601). */
  since?: string;
  /** limit keeps the last this many lines; default 1000. */
  limit?: number;
}

/** LogReader is what the API needs to serve `GET /v1/apps/{app}/logs` (the journal implements it). */
export interface LogReader {
  read(instanceIds: readonly string[], options?: ReadOptions): Promise<LogEntry[]>;
  /** follow calls fn with each new line of these instances until the returned function is called. */
  follow(instanceIds: readonly string[], fn: (e: LogEntry) => void): () => void;
}

const CURRENT = 'journal.ndjson';
const DEFAULT_READ_LIMIT = 1000;

interface Stored {
  t: string;
  s: LogStream;
  m: string;
}

export class LogJournal implements LogReader {
  readonly dir: string;
  readonly limits: JournalLimits;
  readonly #events = new EventEmitter();
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(options: { dir: string; limits?: Partial<JournalLimits> }) {
    this.dir = options.dir;
    this.limits = { ...DEFAULT_JOURNAL_LIMITS, ...options.limits };
    // Every `ward logs -f` is a listener; there is no leak to warn about.
    this.#events.setMaxListeners(0);
  }

  /** instanceDir is where one instance's journal and capture files live; it checks the id. */
  instanceDir(id: string): string {
    if (!isId(id, 'instance')) throw new TypeError(`not an instance id: ${JSON.stringify(id)}`);
    return join(this.dir, id);
  }

  /** outputFiles are the files the runtime appends the instance's stdout and stderr to. */
  outputFiles(id: string): { stdout: string; stderr: string } {
    const d = this.instanceDir(id);
    return { stdout: join(d, 'stdout'), stderr: join(d, 'stderr') };
  }

  /** ensure makes the instance's directory (0700: output may hold anything the app printed). */
  async ensure(id: string): Promise<string> {
    const d = this.instanceDir(id);
    await mkdir(d, { recursive: true, mode: 0o700 });
    return d;
  }

  /** #serial runs one instance's writes in order: appends and rotations never interleave. */
  #serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => {});
    this.#queues.set(id, settled);
    void settled.then(() => {
      if (this.#queues.get(id) === settled) this.#queues.delete(id);
    });
    return next;
  }

  /** append writes lines to the instance's journal, rotating as needed, and tells followers. */
  append(id: string, lines: readonly LogLine[]): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    const split = lines.flatMap((l) => this.#split(l));
    return this.#serial(id, async () => {
      const d = await this.ensure(id);
      const text = split.map((l) => JSON.stringify({ t: l.time, s: l.stream, m: l.message } satisfies Stored)).join('\n') + '\n';
      await appendFile(join(d, CURRENT), text, { mode: 0o600 });
      const size = (await stat(join(d, CURRENT))).size;
      if (size >= this.limits.fileBytes) await this.#rotate(d);
      for (const l of split) this.#events.emit('line', { ...l, instance: id } satisfies LogEntry);
    });
  }

  /** system appends one line from the agent itself (stream `ward`). */
  system(id: string, message: string, at: Date = new Date()): Promise<void> {
    return this.append(id, [{ time: at.toISOString(), stream: 'ward', message }]);
  }

  #split(l: LogLine): LogLine[] {
    const max = this.limits.maxLineBytes;
    if (Buffer.byteLength(l.message) <= max) return [l];
    const out: LogLine[] = [];
    const buf = Buffer.from(l.message);
    for (let i = 0; i < buf.length; i += max) out.push({ ...l, message: buf.subarray(i, i + max).toString() });
    return out;
  }

  async #rotate(d: string): Promise<void> {
    const n = this.limits.files;
    const name = (i: number) => join(d, i === 0 ? CURRENT : `journal.${i}.ndjson`);
    await rm(name(n - 1), { force: true });
    for (let i = n - 2; i >= 0; i--) await rename(name(i), name(i + 1)).catch(() => {});
    if (n === 1) await rm(name(0), { force: true });
  }

  /** #files lists an instance's journal files, oldest first. */
  async #files(id: string): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.instanceDir(id));
    } catch {
      return [];
    }
    const rotated = names
      .map((n) => /^journal\.(\d+)\.ndjson$/.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(b[1]) - Number(a[1]))
      .map((m) => m[0]);
    return [...rotated, ...(names.includes(CURRENT) ? [CURRENT] : [])].map((n) => join(this.instanceDir(id), n));
  }

  async #readOne(id: string, since: string | undefined): Promise<LogEntry[]> {
    // Reads wait for writes in progress, so a reader never sees half a rotation.
    return this.#serial(id, async () => {
      const out: LogEntry[] = [];
      for (const f of await this.#files(id)) {
        const text = await readFile(f, 'utf8').catch(() => '');
        for (const line of text.split('\n')) {
          if (line === '') continue;
          let s: Stored;
          try {
            s = JSON.parse(line) as Stored;
          } catch {
            continue; // a line cut by a crash mid-write
          }
          if (since !== undefined && s.t < since) continue;
          out.push({ time: s.t, stream: s.s, message: s.m, instance: id });
        }
      }
      return out;
    });
  }

  /** read returns the instances' lines merged by time (oldest first), the last `limit` of them. */
  async read(instanceIds: readonly string[], options: ReadOptions = {}): Promise<LogEntry[]> {
    const all = (await Promise.all(instanceIds.map((id) => this.#readOne(id, options.since)))).flat();
    // A stable sort keeps each instance's own order for lines with the same millisecond.
    all.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    const limit = options.limit ?? DEFAULT_READ_LIMIT;
    return all.length > limit ? all.slice(all.length - limit) : all;
  }

  /** tail returns the last n lines of one instance as text, `[stream] message` (for failure reports). */
  async tail(id: string, n: number): Promise<string[]> {
    return (await this.read([id], { limit: n })).map((e) => (e.stream === 'stdout' ? e.message : `[${e.stream}] ${e.message}`));
  }

  follow(instanceIds: readonly string[], fn: (e: LogEntry) => void): () => void {
    const wanted = new Set(instanceIds);
    const listener = (e: LogEntry) => {
      if (wanted.has(e.instance)) fn(e);
    };
    this.#events.on('line', listener);
    return () => this.#events.off('line', listener);
  }

  /** remove deletes an instance's journal and capture files. */
  remove(id: string): Promise<void> {
    return this.#serial(id, () => rm(this.instanceDir(id), { recursive: true, force: true }));
  }

  /** instances lists the ids that have a journal directory. */
  async instances(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => isId(n, 'instance')).sort();
    } catch {
      return [];
    }
  }
}

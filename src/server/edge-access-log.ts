/**
 * The edge's access log in the instances' log streams: each request an instance answered becomes one
 * `edge` line in that instance's journal (so `ward logs` shows it beside the app's own output), its
 * message the entry as JSON. Requests no instance answered (404 for an unknown host, 421, 503 with no
 * healthy instance, a refused request) have no instance to file them under: they are counted in the
 * edge's metrics only.
 *
 * write() is on the request path: it only queues. Lines are appended in batches (every flushMs), and
 * while the queue is full (the disk is slow) new entries are dropped and counted, never waited for.
 */
import type { AccessLogEntry, AccessLogSink } from '../edge/index.ts';

/** JournalTarget is the part of the agent's LogJournal the access log writes to. */
export interface JournalTarget {
  append(id: string, lines: ReadonlyArray<{ time: string; stream: 'edge'; message: string }>): Promise<void>;
}

export interface JournalAccessLogOptions {
  /** flushMs is how often queued lines are appended; default 250 ms. */
  flushMs?: number;
  /** maxQueued bounds the lines waiting to be written; default 10 000. */
  maxQueued?: number;
  /** onError hears of a batch that could not be appended (its lines are lost). */
  onError?: (err: unknown, instanceId: string) => void;
}

export class JournalAccessLog implements AccessLogSink {
  readonly #journal: JournalTarget;
  readonly #maxQueued: number;
  readonly #onError: ((err: unknown, instanceId: string) => void) | undefined;
  #queued = new Map<string, Array<{ time: string; stream: 'edge'; message: string }>>();
  #count = 0;
  #flushing: Promise<void> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;
  /** dropped counts entries left out because the queue was full. */
  dropped = 0;

  constructor(journal: JournalTarget, options: JournalAccessLogOptions = {}) {
    this.#journal = journal;
    this.#maxQueued = options.maxQueued ?? 10_000;
    this.#onError = options.onError;
    this.#timer = setInterval(() => void this.flush(), options.flushMs ?? 250);
    this.#timer.unref();
  }

  write(entry: AccessLogEntry): void {
    const id = entry.instance;
    if (id === undefined) return;
    if (this.#count >= this.#maxQueued) {
      this.dropped++;
      return;
    }
    // The line carries the time and the instance already.
    const { time, instance: _instance, ...rest } = entry;
    let lines = this.#queued.get(id);
    if (!lines) this.#queued.set(id, (lines = []));
    lines.push({ time, stream: 'edge', message: JSON.stringify(rest) });
    this.#count++;
  }

  /** flush appends what is queued; batches never overlap, so each instance's lines stay in order. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#count === 0) return;
      const batch = this.#queued;
      this.#queued = new Map();
      this.#count = 0;
      for (const [id, lines] of batch) {
        try {
          await this.#journal.append(id, lines);
        } catch (e) {
          this.#onError?.(e, id);
        }
      }
    });
    return this.#flushing;
  }

  /** close writes what is queued and stops the timer. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}

/**
 * BackupScheduler calls a tick function on an interval, one tick at a time: the BackupService's tick,
 * which finds what is due from times stored in the database. The scheduler itself holds no state worth
 * keeping, so a restart loses nothing: what came due while the server was down runs on the first tick.
 */
export interface SchedulerLogger {
  error(o: object, msg: string): void;
}

export interface BackupSchedulerOptions {
  /** recover runs once before the first tick (BackupService.recover: fail runs a dead process left running). */
  recover: () => Promise<unknown>;
  tick: () => Promise<unknown>;
  /** intervalMs between ticks; default 60 s (schedules have minute resolution). */
  intervalMs?: number;
  logger: SchedulerLogger;
}

export class BackupScheduler {
  readonly #o: BackupSchedulerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(o: BackupSchedulerOptions) {
    this.#o = o;
  }

  /** start recovers, runs a first tick, and keeps ticking until close. */
  async start(): Promise<void> {
    await this.#o.recover().catch((e: unknown) => this.#o.logger.error({ err: e }, 'backup recovery failed'));
    this.#kick();
    this.#timer = setInterval(() => this.#kick(), this.#o.intervalMs ?? 60_000);
    this.#timer.unref();
  }

  #kick(): void {
    if (this.#closed || this.#running) return;
    this.#running = this.#o
      .tick()
      .then(() => undefined)
      .catch((e: unknown) => this.#o.logger.error({ err: e }, 'backup scheduler tick failed'))
      .finally(() => {
        this.#running = undefined;
      });
  }

  /**
   * close stops ticking. It does not wait for a backup in progress (that can take hours): a run cut off
   * by the process ending is failed by the next start's recover.
   */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
  }
}

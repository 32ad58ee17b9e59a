/** Clock lets services read the time through one seam, so tests can move it (session expiry, throttling). */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** ManualClock is a Clock a test sets and advances by hand. */
export class ManualClock implements Clock {
  #t: number;
  constructor(start: Date | number = Date.UTC(2026, 0, 1)) {
    this.#t = typeof start === 'number' ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.#t);
  }
  advance(ms: number): void {
    this.#t += ms;
  }
  set(t: Date | number): void {
    this.#t = typeof t === 'number' ? t : t.getTime();
  }
}

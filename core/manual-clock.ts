/**
 * A hand-driven clock for tests of code that takes timer functions (earliest-deadline.ts and its users,
 * client/app/render-pacer.ts, client/app/token-report-batcher.ts): nothing fires until the test advances
 * the clock, and then every due timer fires in time order. It is a TimerFunctions (earliest-deadline.ts).
 */
export class ManualClock {
  private t = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; cb: () => void }>();

  readonly now = (): number => this.t;

  readonly setTimer = (cb: () => void, ms: number): unknown => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, cb });
    return id;
  };

  readonly clearTimer = (id: unknown): void => {
    this.timers.delete(id as number);
  };

  /** Moves the clock by `ms`, firing the timers that fall due, earliest first. */
  advance(ms: number): void {
    this.t += ms;
    for (const [id, timer] of [...this.timers].sort((a, b) => a[1].at - b[1].at))
      if (timer.at <= this.t) {
        this.timers.delete(id);
        timer.cb();
      }
  }

  get pendingTimers(): number {
    return this.timers.size;
  }
}

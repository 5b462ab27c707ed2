/**
 * One timer for a batch whose items may each wait a different longest time: it fires at the earliest
 * deadline asked for since it last fired (or was cancelled). A batching queue asks `within(ms)` for each
 * item it holds, so an item that must go soon (a token, for the text) takes along the ones that may wait
 * longer (decode phases, for a timeline that draws once a second).
 */

export interface TimerFunctions {
  setTimer(cb: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
  /** ms, monotonic */
  now(): number;
}

export const REAL_TIMERS: TimerFunctions = {
  setTimer: (cb, ms) => setTimeout(cb, ms),
  clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
  now: () => performance.now(),
};

export class EarliestDeadline {
  private timer: unknown = null;
  private deadline = Number.POSITIVE_INFINITY;

  constructor(
    private readonly fire: () => void,
    private readonly timers: TimerFunctions = REAL_TIMERS,
  ) {}

  /** Fire within `ms` from now at the latest (an earlier deadline already asked for stands). */
  within(ms: number): void {
    const at = this.timers.now() + ms;
    if (at >= this.deadline) return;
    if (this.timer !== null) this.timers.clearTimer(this.timer);
    this.deadline = at;
    this.timer = this.timers.setTimer(() => {
      this.timer = null;
      this.deadline = Number.POSITIVE_INFINITY;
      this.fire();
    }, ms);
  }

  /** Forget the deadline (what was waiting went another way). */
  cancel(): void {
    if (this.timer !== null) this.timers.clearTimer(this.timer);
    this.timer = null;
    this.deadline = Number.POSITIVE_INFINITY;
  }
}

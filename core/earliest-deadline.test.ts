import { describe, expect, it } from 'vitest';
import { EarliestDeadline, type TimerFunctions } from './earliest-deadline.ts';

/** Timers on a hand-driven clock: advance() fires what falls due, earliest first. */
function handClock() {
  let t = 0;
  let next = 1;
  const timers = new Map<number, { at: number; cb: () => void }>();
  const fns: TimerFunctions = {
    now: () => t,
    setTimer: (cb, ms) => {
      timers.set(next, { at: t + ms, cb });
      return next++;
    },
    clearTimer: (id) => void timers.delete(id as number),
  };
  const advance = (ms: number) => {
    t += ms;
    for (const [id, timer] of [...timers].sort((a, b) => a[1].at - b[1].at))
      if (timer.at <= t) {
        timers.delete(id);
        timer.cb();
      }
  };
  return { fns, advance, now: () => t, pending: () => timers.size };
}

describe('EarliestDeadline', () => {
  it('fires once, at the earliest deadline asked for', () => {
    const c = handClock();
    const fired: number[] = [];
    const d = new EarliestDeadline(() => fired.push(c.now()), c.fns);
    d.within(1000);
    c.advance(300);
    d.within(100); // due at 400, before 1000
    d.within(500); // due at 800: the earlier one stands
    c.advance(99);
    expect(fired).toEqual([]);
    c.advance(1);
    expect(fired).toEqual([400]);
    c.advance(2000);
    expect(fired).toEqual([400]); // the replaced timer never fires
    expect(c.pending()).toBe(0);
    expect(d.pending).toBe(false);
  });

  it('starts afresh after it fired or was cancelled', () => {
    const c = handClock();
    const fired: number[] = [];
    const d = new EarliestDeadline(() => fired.push(c.now()), c.fns);
    d.within(50);
    d.cancel();
    expect(d.pending).toBe(false);
    c.advance(100);
    expect(fired).toEqual([]);
    d.within(1000); // no stale deadline (the cancelled 50 ms one) holds it back
    expect(d.pending).toBe(true);
    c.advance(1000);
    expect(fired).toEqual([1100]);
    d.within(10);
    c.advance(10);
    expect(fired).toEqual([1100, 1110]);
  });
});

import { describe, expect, it } from 'vitest';
import { EarliestDeadline } from './earliest-deadline.ts';
import { ManualClock } from './manual-clock.ts';

describe('EarliestDeadline', () => {
  it('fires once, at the earliest deadline asked for', () => {
    const c = new ManualClock();
    const fired: number[] = [];
    const d = new EarliestDeadline(() => fired.push(c.now()), c);
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
    expect(c.pendingTimers).toBe(0);
  });

  it('starts afresh after it fired or was cancelled', () => {
    const c = new ManualClock();
    const fired: number[] = [];
    const d = new EarliestDeadline(() => fired.push(c.now()), c);
    d.within(50);
    d.cancel();
    expect(c.pendingTimers).toBe(0);
    c.advance(100);
    expect(fired).toEqual([]);
    d.within(1000); // no stale deadline (the cancelled 50 ms one) holds it back
    expect(c.pendingTimers).toBe(1);
    c.advance(1000);
    expect(fired).toEqual([1100]);
    d.within(10);
    c.advance(10);
    expect(fired).toEqual([1100, 1110]);
  });
});

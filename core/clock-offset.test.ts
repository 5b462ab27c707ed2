import { describe, expect, it } from 'vitest';
import { ClockOffset, mergeClockBound, requestOrigin } from './clock-offset.ts';

describe('ClockOffset', () => {
  it('has no estimate before a sample', () => {
    const c = new ClockOffset();
    expect(c.estimate).toBeNull();
    expect(c.localTimeOf(1_000)).toBeNull();
  });

  it("takes the server's time at the round trip's midpoint, from the shortest trip kept", () => {
    // the server clock runs 5000 ms ahead; trips of 40 ms (answered in the middle) and 4 ms
    const c = new ClockOffset();
    c.sample(1_000, 1_000 + 20 + 5_000, 1_040);
    expect(c.estimate).toEqual({ offsetMs: 5_000, uncertaintyMs: 20 });
    // an ack read 58 ms late by a busy page: a longer trip whose midpoint is off by 29 ms, not kept
    c.sample(2_000, 2_001 + 5_000, 2_060);
    expect(c.estimate).toEqual({ offsetMs: 5_000, uncertaintyMs: 20 });
    c.sample(3_000, 3_002 + 5_000, 3_004);
    expect(c.estimate).toEqual({ offsetMs: 5_000, uncertaintyMs: 2 });
  });

  it('forgets samples beyond its window, and ignores impossible ones', () => {
    const c = new ClockOffset(2);
    c.sample(0, 1_001, 2); // offset 1000, trip 2
    c.sample(10, 10 + 50 + 2_000, 110); // offset 2000, trip 100
    c.sample(200, 200 + 50 + 2_000, 300); // the short sample leaves the window
    expect(c.estimate).toEqual({ offsetMs: 2_000, uncertaintyMs: 50 });
    c.sample(500, 9e9, 400); // received before sent
    c.sample(600, Number.NaN, 610);
    expect(c.estimate).toEqual({ offsetMs: 2_000, uncertaintyMs: 50 });
  });

  it("maps a server time to this process's performance.now(), unless the estimate is too loose", () => {
    const c = new ClockOffset();
    const now = performance.timeOrigin + performance.now();
    c.sample(now, now + 3 + 7_000, now + 6); // server 7000 ms ahead, trip 6 ms
    const serverMs = now + 7_000 + 100; // 100 ms after `now` on the server's clock
    expect(c.localTimeOf(serverMs)! - (now - performance.timeOrigin)).toBeCloseTo(100, 6);
    expect(c.localTimeOf(serverMs, 1)).toBeNull();
  });

  it("merges a page's reports of one request: the largest bound, none once a report was unaligned", () => {
    expect(mergeClockBound(undefined, 2)).toBe(2);
    expect(mergeClockBound(2, 0.5)).toBe(2);
    expect(mergeClockBound(0.5, 3)).toBe(3);
    expect(mergeClockBound(undefined, undefined)).toBeNull();
    expect(mergeClockBound(2, undefined)).toBeNull();
    expect(mergeClockBound(null, 1)).toBeNull();
  });

  it('a start handled at once may map a little ahead of now: it is now, and the bound says how far off', () => {
    // mapped 2 ms in the past, bound 3 ms: as mapped
    expect(requestOrigin(998, 3, 1_000)).toEqual({ originMs: 998, boundMs: 3 });
    // mapped 1 ms ahead within a 3 ms bound: now, bound unchanged
    expect(requestOrigin(1_001, 3, 1_000)).toEqual({ originMs: 1_000, boundMs: 3 });
    // 8 ms ahead of a 3 ms bound: the estimate is off by at least 8 ms, and says so
    expect(requestOrigin(1_008, 3, 1_000)).toEqual({ originMs: 1_000, boundMs: 8 });
    // farther ahead than any usable estimate, or older than ten minutes: a broken clock
    expect(requestOrigin(1_060, 3, 1_000)).toBeNull();
    expect(requestOrigin(1_000, 3, 700_000)).toBeNull();
    expect(requestOrigin(Number.NaN, 3, 1_000)).toBeNull();
  });
});

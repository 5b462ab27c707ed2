/**
 * The page-wide read cap (pure, clock passed in): a lone read takes bytes / cap, reads that overlap share
 * the cap (their total takes the sum of their bytes / cap), and a read slower than the cap is not slowed.
 */
import { describe, expect, it } from 'vitest';
import { ReadPacer } from './read-pacer.ts';

const CAP = 1000; // bytes/s: 1 byte per ms

describe('ReadPacer', () => {
  it('stretches a lone read to bytes / cap, minus the time it already took', () => {
    const pacer = new ReadPacer(CAP);
    expect(pacer.delaySeconds(500, 0, 100)).toBeCloseTo(0.4, 12);
  });

  it('makes reads started together end one after another, the last at the sum of their bytes / cap', () => {
    const pacer = new ReadPacer(CAP);
    // four units of 250 bytes, all started at t = 0, their IndexedDB gets resolving at 10 .. 40 ms
    const ends = [10, 20, 30, 40].map((now) => now + 1000 * pacer.delaySeconds(250, 0, now));
    expect(ends.map((e) => Math.round(e))).toEqual([250, 500, 750, 1000]);
  });

  it('lets a read that starts after the timeline is free have the whole cap again', () => {
    const pacer = new ReadPacer(CAP);
    pacer.delaySeconds(100, 0, 5); // reserved until 100 ms
    expect(pacer.delaySeconds(100, 2000, 2010)).toBeCloseTo(0.09, 12);
  });

  it('adds no delay to a read slower than the cap, and none without a cap', () => {
    expect(new ReadPacer(CAP).delaySeconds(100, 0, 300)).toBe(0);
    expect(new ReadPacer(undefined).delaySeconds(1e9, 0, 1)).toBe(0);
  });
});

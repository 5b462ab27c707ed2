import { describe, expect, it } from 'vitest';
import { LIVENESS_WINDOW, LivenessWindow } from './liveness.ts';

describe('LivenessWindow', () => {
  it('keeps the configured limit for a device that answers every second', () => {
    const w = new LivenessWindow(0);
    for (let t = 1000; t <= 10_000; t += 1000) w.signal(t);
    expect(w.lastSignalMs).toBe(10_000);
    expect(w.longestGapMs).toBe(1000);
    expect(w.limitMs(3000, 15_000)).toBe(3000);
  });

  it('gives twice the longest recent gap, at most the cap', () => {
    const w = new LivenessWindow(0);
    w.signal(1000);
    w.signal(3500); // a 2.5 s gap
    w.signal(4000);
    expect(w.limitMs(3000, 15_000)).toBe(5000);
    w.signal(13_000); // a 9 s gap
    expect(w.limitMs(3000, 15_000)).toBe(15_000);
  });

  it('forgets a gap once LIVENESS_WINDOW newer ones came', () => {
    const w = new LivenessWindow(0);
    w.signal(4000);
    let t = 4000;
    for (let i = 0; i < LIVENESS_WINDOW - 1; i++) w.signal((t += 1000));
    expect(w.longestGapMs).toBe(4000);
    w.signal((t += 1000));
    expect(w.longestGapMs).toBe(1000);
  });

  it('ignores a signal that is not later than the last one (same tick, clock step back)', () => {
    const w = new LivenessWindow(5000);
    w.signal(5000);
    w.signal(4000);
    expect(w.longestGapMs).toBe(0);
    expect(w.lastSignalMs).toBe(5000);
  });
});

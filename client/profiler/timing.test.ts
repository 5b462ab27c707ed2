import { describe, expect, it } from 'vitest';
import { median, sleepSeconds } from './timing.ts';

describe('median', () => {
  it('handles odd, even, unsorted and empty lists', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5])).toBe(5);
    expect(median([])).toBeNaN();
  });
});

describe('sleepSeconds', () => {
  it('waits at least the asked time', async () => {
    const t0 = performance.now();
    await sleepSeconds(0.02);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(19);
  });
});

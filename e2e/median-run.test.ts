import { describe, expect, it } from 'vitest';
import { medianRunIndex } from './median-run.ts';

const runs = (...ttft: (number | null)[]) => ttft.map((measuredTtft) => ({ measuredTtft }));

describe('medianRunIndex', () => {
  it('picks the run of median TTFT, wherever it ran', () => {
    expect(medianRunIndex(runs(7.4, 6.1, 9.8))).toBe(0);
    expect(medianRunIndex(runs(9.8, 6.1, 7.4))).toBe(2);
    expect(medianRunIndex(runs(5))).toBe(0);
  });
  it('takes the lower middle of an even count, and sorts a failed run last', () => {
    expect(medianRunIndex(runs(8, 6, 7, 9))).toBe(2);
    expect(medianRunIndex(runs(null, 6, 7))).toBe(2);
    expect(medianRunIndex(runs(null, null, 7))).toBe(0);
  });
  it('refuses an empty list', () => {
    expect(() => medianRunIndex([])).toThrow(/no runs/);
  });
});

import { describe, expect, it } from 'vitest';
import { mergeTimings } from './timings.ts';
import type { TimingEntry } from '../../core/protocol.ts';

describe('mergeTimings', () => {
  it('deduplicates echoes and sorts by start', () => {
    const a: TimingEntry = { phase: 'storage-read', step: 0, startMs: 0, endMs: 40 };
    const b: TimingEntry = { phase: 'compute', step: 0, startMs: 90, endMs: 120 };
    const c: TimingEntry = { phase: 'session-create', step: 0, startMs: 40, endMs: 90 };
    const merged = mergeTimings([b, a], [c, a, { ...b, endMs: 125 }]);
    expect(merged).toEqual([a, c, { ...b, endMs: 125 }]);
  });
  it('keeps the same phase of different steps', () => {
    const s0: TimingEntry = { phase: 'compute', step: 0, startMs: 10, endMs: 20 };
    const s1: TimingEntry = { phase: 'compute', step: 1, startMs: 30, endMs: 35 };
    expect(mergeTimings([s0], [s1])).toHaveLength(2);
  });
});

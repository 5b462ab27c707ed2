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

describe('mergeTimings on long sorted lists (one entry at a time, as a page adds them)', () => {
  it('gives what merging by key and sorting gives, entry by entry, echoes and replacements included', () => {
    // the old definition, written out: a map by key (later wins), sorted by start then end
    const reference = (existing: readonly TimingEntry[], incoming: readonly TimingEntry[]) => {
      const map = new Map(existing.map((t) => [`${t.phase}:${t.step}:${t.startMs}`, t]));
      for (const t of incoming) map.set(`${t.phase}:${t.step}:${t.startMs}`, t);
      return [...map.values()].sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs);
    };
    const phases: TimingEntry['phase'][] = ['wait', 'receive', 'compute', 'send', 'ingress', 'kernel', 'egress'];
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let list: TimingEntry[] = [];
    const sent: TimingEntry[] = [];
    for (let step = 0; step < 60; step++) {
      for (const phase of phases) {
        // starts repeat on purpose (contiguous parts share their boundaries), and arrive out of order
        const startMs = step * 10 + Math.floor(rand() * 4);
        const e: TimingEntry = { phase, step, startMs, endMs: startMs + Math.floor(rand() * 3) };
        const want = reference(list, [e]);
        list = mergeTimings(list, [e]);
        expect(list).toEqual(want);
        sent.push(e);
      }
    }
    // the server's echo of a batch changes nothing
    expect(mergeTimings(list, sent.slice(100, 180))).toEqual(list);
    // entries replaced with a new end: the same entries, sorted (entries equal in start and end in any order)
    const canonical = (xs: readonly TimingEntry[]) =>
      [...xs].sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs || a.phase.localeCompare(b.phase));
    const changed = sent.slice(100, 180).map((t, i) => (i % 9 === 0 ? { ...t, endMs: t.endMs + 1 } : t));
    const merged = mergeTimings(list, changed);
    expect(canonical(merged)).toEqual(canonical(reference(list, changed)));
    expect(
      merged.every(
        (t, i) =>
          i === 0 ||
          t.startMs > merged[i - 1].startMs ||
          (t.startMs === merged[i - 1].startMs && t.endMs >= merged[i - 1].endMs),
      ),
    ).toBe(true);
  });
});

/**
 * stepBreakdown on a two-stage ring written out by hand (times chosen so every figure can be worked out
 * on paper), with and without a shared clock, and with a step that misses a part.
 */
import { describe, expect, it } from 'vitest';
import type { TimingEntry } from './protocol.ts';
import { ringBudget, stepBreakdown, stepParts } from './step-breakdown.ts';

/** [step, ingress start, kernel start, egress start, sent] on one stage's clock. */
type Row = [number, number, number, number, number];
const parts = (rows: Row[]): TimingEntry[] =>
  rows.flatMap(([step, a, b, c, d]) => [
    { phase: 'ingress', step, startMs: a, endMs: b },
    { phase: 'kernel', step, startMs: b, endMs: c },
    { phase: 'egress', step, startMs: c, endMs: d },
  ]);

// stage 0's clock + 100 = stage 1's clock + 95 = the shared clock
const STAGE0: TimingEntry[] = [
  { phase: 'compute', step: 0, startMs: 0, endMs: 9 }, // other phases are ignored
  ...parts([
    [0, -10, -9, -3, -2], // the prefill: not a decode step
    [1, 0, 1, 4, 5],
    [2, 20, 21, 23, 25],
    [3, 40, 42, 44, 45],
  ]),
];
const STAGE1: TimingEntry[] = parts([
  [1, 12, 13, 18, 19], // ready at 107 shared: 2 ms after stage 0 sent (105); sent at 114, stage 0's next input at 120
  [2, 31, 32, 36, 38], // ready at 126: 1 ms after 125; sent at 133, stage 0's next input at 140
  [3, 51, 52, 55, 56],
]);

describe('stepBreakdown', () => {
  it('accounts each token: cycle = compute + overhead + wire, per hop on the shared clock', () => {
    const b = stepBreakdown([
      { timings: STAGE0, offsetMs: 100 },
      { timings: STAGE1, offsetMs: 95 },
    ]);
    expect(b.tokens).toEqual([
      { step: 1, cycleMs: 20, computeMs: 8, overheadMs: 4, wireMs: 8, hopWireMs: [2, 6] },
      { step: 2, cycleMs: 20, computeMs: 6, overheadMs: 6, wireMs: 8, hopWireMs: [1, 7] },
    ]);
    for (const t of b.tokens) expect(t.computeMs + t.overheadMs + t.wireMs).toBe(t.cycleMs);
    expect(b.median).toEqual({ cycleMs: 20, computeMs: 7, overheadMs: 5, wireMs: 8 });
    expect(b.hopWireMs).toEqual([1.5, 6.5]);
    expect(b.stages).toEqual([
      { steps: 3, ingressMs: 1, kernelMs: 2, egressMs: 1, stepMs: 5 },
      { steps: 3, ingressMs: 1, kernelMs: 4, egressMs: 1, stepMs: 7 },
    ]);
    expect(b.perTokenMs).toBe(20);
    expect(b.ringWireMs).toBe(8); // 20 - (5 + 7)
  });

  it('without a shared clock: no per-hop wire, the ring wire from medians on each own clock', () => {
    const b = stepBreakdown([
      { timings: STAGE0, offsetMs: null },
      { timings: STAGE1, offsetMs: null },
    ]);
    expect(b.tokens).toEqual([]);
    expect(b.median).toBeNull();
    expect(b.hopWireMs).toEqual([null, null]);
    expect(b.perTokenMs).toBe(20);
    expect(b.ringWireMs).toBe(8);
  });

  it('leaves out a step that misses a part or has one twice', () => {
    const missing = STAGE1.filter((t) => !(t.step === 2 && t.phase === 'kernel'));
    const b = stepBreakdown([
      { timings: STAGE0, offsetMs: 100 },
      { timings: missing, offsetMs: 95 },
    ]);
    expect(b.tokens.map((t) => t.step)).toEqual([1]);
    expect(b.stages[1]?.steps).toBe(2);
    const twice = [...STAGE0, { phase: 'egress' as const, step: 3, startMs: 44, endMs: 46 }];
    expect([...stepParts(twice).keys()]).toEqual([0, 1, 2]);
  });
});

describe('ringBudget', () => {
  it("sets the per-token cycle against the stages' median kernels plus one one-way hop per stage", () => {
    // kernels: stage 0 steps 1-3 take 3, 2, 2 ms (median 2); stage 1 take 5, 4, 3 (median 4); cycle 20 ms
    const b = stepBreakdown([
      { timings: STAGE0, offsetMs: null },
      { timings: STAGE1, offsetMs: null },
    ]);
    expect(ringBudget(b, 1.5)).toEqual({
      perTokenMs: 20,
      kernelMs: 6,
      hopsMs: 3,
      budgetMs: 9,
      ratio: 20 / 9,
      device: null,
    });
    // on devices of half and a quarter of a core: 2 / 0.5 + 4 / 0.25 = 20 ms of kernels, + 3 ms of hops
    expect(ringBudget(b, 1.5, [0.5, 0.25])?.device).toEqual({
      cores: [0.5, 0.25],
      kernelMs: 20,
      budgetMs: 23,
      ratio: 20 / 23,
    });
    expect(() => ringBudget(b, 1.5, [0.5])).toThrow(/1 device shares for 2 stages/);
    expect(() => ringBudget(b, 1.5, [0.5, 0])).toThrow(/each must be > 0/);
    // a stage without decode steps: no budget
    expect(
      ringBudget(
        stepBreakdown([
          { timings: STAGE0, offsetMs: null },
          { timings: [], offsetMs: null },
        ]),
        1,
      ),
    ).toBe(null);
  });
});

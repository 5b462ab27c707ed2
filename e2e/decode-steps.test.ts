/**
 * The decode bench's step figures (e2e/decode-bench.ts decodeSteps) from a hand-made 2-stage run: per hop
 * only where every page timed the run on the server's clock, else the ring's wire as one sum.
 */
import { describe, expect, it } from 'vitest';
import type { TimingEntry } from '../core/protocol.ts';
import { decodeSteps } from './decode-bench.ts';
import type { PlanRun } from './run-summary.ts';

/** Steps 1..4 of a stage whose input arrives at 100 n + `readyAt`: ingress 1 ms, kernel 5 ms, egress 1 ms. */
function steps(readyAt: number): TimingEntry[] {
  return [1, 2, 3, 4].flatMap((n): TimingEntry[] => {
    const t = 100 * n + readyAt;
    return [
      { phase: 'ingress', step: n, startMs: t, endMs: t + 1 },
      { phase: 'kernel', step: n, startMs: t + 1, endMs: t + 6 },
      { phase: 'egress', step: n, startMs: t + 6, endMs: t + 7 },
    ];
  });
}

function run(clocks?: Record<string, number | null>): PlanRun {
  return {
    stages: [
      { stageIndex: 0, peerId: 'a' },
      { stageIndex: 1, peerId: 'b' },
    ],
    // a hands over at 100 n + 7, b has it at 100 n + 10 (3 ms); b hands back at 100 n + 17, a's next at 100 (n + 1)
    timings: { a: steps(0), b: steps(10) },
    ...(clocks ? { clocks } : {}),
  } as unknown as PlanRun;
}

describe('decodeSteps', () => {
  it("reads each hop across its two pages when both are on the server's clock", () => {
    const d = decodeSteps(run({ a: 0.5, b: 2 }));
    expect(d.perTokenMs).toBe(100);
    expect(d.betweenMs).toBe(100 - 14);
    expect(d.hopsMs).toEqual([3, 83]);
    expect(d.clockBoundMs).toBe(2);
  });

  it('keeps only the sum where a page counted from its own start, or the run predates the clocks', () => {
    for (const r of [run({ a: 0.5, b: null }), run()]) {
      const d = decodeSteps(r);
      expect(d.betweenMs).toBe(86);
      expect(d.hopsMs).toEqual([null, null]);
      expect(d.clockBoundMs).toBeNull();
    }
  });
});

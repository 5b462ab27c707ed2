import { describe, expect, it } from 'vitest';
import { BASELINES, runBaseline, strongestFirst } from './baselines.ts';
import { solveExactDp } from './dp.ts';
import { planOptimal } from './plan.ts';
import { randomProblems } from './random-problems.ts';
import { solveScalable } from './scalable.ts';
import { buildCostTable, stageMemory } from './stage-costs.ts';
import { checkPlanShape, evaluateWithCosts } from './timing.ts';
import type { PlanProblem } from './types.ts';

/** Least latency among the baselines whose plans fit in memory (the ones a real planner could run). */
function bestFeasibleBaseline(p: PlanProblem): number {
  let best = Infinity;
  for (const b of BASELINES) {
    const tl = runBaseline(p, b).timeline;
    if (tl.memoryOk) best = Math.min(best, tl.latency);
  }
  return best;
}

describe('scalable planner', () => {
  it('is within 2% of the exact optimum on average on 40 instances (K 4..8, L 8..24), never better', () => {
    const problems = [
      ...randomProblems(31, 20, { K: [4, 8], L: [8, 24] }, { memory: 'loose' }),
      ...randomProblems(32, 20, { K: [4, 8], L: [8, 24] }, { memory: 'tight', memoryModel: 'sum' }),
    ];
    const gaps: number[] = [];
    for (const p of problems) {
      const ct = buildCostTable(p);
      const exact = solveExactDp(ct);
      const sc = solveScalable(ct, strongestFirst(p));
      if (!exact) {
        expect(sc).toBeNull();
        continue;
      }
      expect(sc!.latency).toBeGreaterThanOrEqual(exact.latency * (1 - 1e-9));
      gaps.push(sc!.latency / exact.latency - 1);
    }
    expect(gaps.length).toBeGreaterThanOrEqual(30);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    expect(mean).toBeLessThan(0.02);
    expect(gaps.filter((g) => g < 1e-9).length / gaps.length).toBeGreaterThan(0.7); // usually exactly optimal
  });

  it('for K up to 64: a valid plan that fits, never worse than the best memory-feasible baseline', () => {
    const problems = [
      ...randomProblems(41, 3, { K: [16, 64], L: [24, 80] }, { memory: 'loose' }),
      ...randomProblems(42, 3, { K: [16, 64], L: [24, 80] }, { memory: 'tight', embeddingAndHead: true }),
    ];
    for (const p of problems) {
      const ct = buildCostTable(p);
      const sc = solveScalable(ct, strongestFirst(p), { maxEvaluations: 100 });
      const baseline = bestFeasibleBaseline(p);
      if (!sc) {
        expect(baseline).toBe(Infinity);
        continue;
      }
      expect(() => checkPlanShape(ct.L, ct.K, sc.stages)).not.toThrow();
      for (const s of sc.stages)
        expect(stageMemory(ct, s.layers.start, s.layers.end, s.device)).toBeLessThanOrEqual(ct.memory[s.device]);
      const ev = evaluateWithCosts(ct, sc.stages);
      expect(ev.latency).toBeCloseTo(sc.latency, 9);
      expect(sc.latency).toBeLessThanOrEqual(baseline * (1 + 1e-9));
    }
  });

  it('planOptimal switches to it beyond the exact state limit', () => {
    const p = randomProblems(51, 1, { K: [20, 20], L: [40, 40] })[0];
    const plan = planOptimal(p);
    expect(plan.method).toBe('scalable');
    expect(planOptimal(p, { method: 'scalable' }).latency).toBeCloseTo(plan.latency, 12);
    const small = randomProblems(52, 1, { K: [5, 5], L: [20, 20] })[0];
    expect(planOptimal(small).method).toBe('exact');
    expect(planOptimal(small, { maxExactStates: 10 }).method).toBe('scalable');
  });
});

describe('planOptimal guards', () => {
  it('refuses a forced exact DP that would not fit in memory', () => {
    const p = randomProblems(53, 1, { K: [26, 26], L: [40, 40] })[0];
    expect(() => planOptimal(p, { method: 'exact' })).toThrow(expect.objectContaining({ code: 'plan-too-large' }));
  });
});

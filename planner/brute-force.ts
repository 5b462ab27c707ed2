/**
 * Brute-force planner for tests: enumerates every ordered subset of devices and every split of the L
 * layers into that many non-empty contiguous ranges, evaluates each plan with the timing model, and
 * keeps the best memory-feasible one. Exponential; use only for small K and L. Pure: no I/O.
 */
import { evaluateWithCosts } from './timing.ts';
import type { CostTable } from './stage-costs.ts';
import type { PlanStage, Timeline } from './types.ts';

export interface BruteForceResult {
  best: Timeline | null; // null when no plan fits in memory
  plansEvaluated: number;
}

/** Every composition of L into n positive parts. */
export function* compositions(L: number, n: number): Generator<number[]> {
  if (n === 1) {
    if (L >= 1) yield [L];
    return;
  }
  for (let first = 1; first <= L - (n - 1); first++) {
    for (const rest of compositions(L - first, n - 1)) yield [first, ...rest];
  }
}

/** Every ordered selection of n distinct devices out of K. */
export function* orderedSubsets(K: number, n: number, used: number[] = []): Generator<number[]> {
  if (used.length === n) {
    yield [...used];
    return;
  }
  for (let d = 0; d < K; d++) {
    if (used.includes(d)) continue;
    used.push(d);
    yield* orderedSubsets(K, n, used);
    used.pop();
  }
}

export function bruteForce(ct: CostTable): BruteForceResult {
  let best: Timeline | null = null;
  let plansEvaluated = 0;
  for (let n = 1; n <= Math.min(ct.K, ct.L); n++) {
    const splits = [...compositions(ct.L, n)];
    for (const devices of orderedSubsets(ct.K, n)) {
      for (const sizes of splits) {
        const stages: PlanStage[] = [];
        let start = 0;
        sizes.forEach((size, k) => {
          stages.push({ device: devices[k], layers: { start, end: start + size } });
          start += size;
        });
        const timeline = evaluateWithCosts(ct, stages);
        plansEvaluated++;
        if (timeline.memoryOk && (best === null || timeline.latency < best.latency)) best = timeline;
      }
    }
  }
  return { best, plansEvaluated };
}

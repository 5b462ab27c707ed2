/**
 * planOptimal: the exact DP when the state space is small enough, the scalable planner beyond.
 * The scalable planner's seed orders give the exact DP an upper bound for pruning.
 */
import { strongestFirst } from './baselines.ts';
import { dpStateCount, MAX_DP_STATES, solveExactDp } from './dp.ts';
import { TandemError } from '../core/errors.ts';
import { solveScalable, type ScalableOptions } from './scalable.ts';
import { buildCostTable, stageMemory, type CostTable } from './stage-costs.ts';
import { evaluateWithCosts } from './timing.ts';
import type { PlanProblem, Timeline } from './types.ts';

export type PlanMethod = 'exact' | 'scalable';

export interface PlanResult extends Timeline {
  method: PlanMethod;
}

export interface PlanOptions {
  /** 'auto' (default): exact when 2^K K (L+1) <= maxExactStates, else scalable. */
  method?: PlanMethod | 'auto';
  /** Default MAX_DP_STATES (about K = 12 at L = 80, K = 14 at L = 28). */
  maxExactStates?: number;
  scalable?: ScalableOptions;
}

/** Why no plan fits: the largest single-layer need vs. the largest device. */
function infeasible(ct: CostTable, p: PlanProblem): TandemError {
  const oneLayer = stageMemory(ct, 0, 1, null);
  const largest = Math.max(...ct.memory);
  const gib = (b: number) => (b / 2 ** 30).toFixed(2);
  return new TandemError(
    'plan-infeasible',
    `no split of the ${ct.L} layers fits the devices' memory (${p.devices.length} devices, largest ${gib(largest)} GiB; ` +
      `one layer needs ${gib(oneLayer)} GiB, all ${ct.L} need ${gib(stageMemory(ct, 0, ct.L, null))} GiB): add devices or memory, or use a smaller model`,
  );
}

/** The minimum-latency plan. Throws TandemError('plan-infeasible') when no plan fits in memory. */
export function planOptimal(p: PlanProblem, options: PlanOptions = {}): PlanResult {
  const ct = buildCostTable(p);
  const maxStates = options.maxExactStates ?? MAX_DP_STATES;
  const method: PlanMethod =
    options.method === 'exact' || options.method === 'scalable'
      ? options.method
      : dpStateCount(ct.K, ct.L) <= maxStates
        ? 'exact'
        : 'scalable';
  if (method === 'exact' && (ct.K > 24 || dpStateCount(ct.K, ct.L) > 25 * MAX_DP_STATES)) {
    throw new TandemError(
      'plan-too-large',
      `the exact DP for ${ct.K} devices and ${ct.L} layers needs ${dpStateCount(ct.K, ct.L).toExponential(1)} states (about 13 bytes each); use method 'scalable' or 'auto'`,
    );
  }
  if (method === 'scalable') {
    const scalable = solveScalable(ct, strongestFirst(p), options.scalable);
    if (!scalable) throw infeasible(ct, p);
    return { ...evaluateWithCosts(ct, scalable.stages), method };
  }
  // The seed orders alone (no local search) give a cheap feasible upper bound for pruning. They may all
  // miss a plan that fits (memory with the embedding and head): then the DP runs without a bound.
  const seeds = solveScalable(ct, strongestFirst(p), { maxEvaluations: 0 });
  const exact = solveExactDp(ct, seeds ? { upperBound: seeds.latency } : {});
  if (!exact) throw infeasible(ct, p);
  return { ...evaluateWithCosts(ct, exact.stages), method };
}

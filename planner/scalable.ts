/**
 * Scalable planner for many devices (K up to 64 and beyond): the exact DP over ONE device order
 * (order-dp.ts: it picks which devices to use and where to cut, for that order) inside a local search
 * over orders. Seeds are orders that tend to be good (strongest device last, so its long load overlaps
 * the upstream stages; fast loaders first) and the baselines' strongest-first order, so the result is
 * never worse than a memory-feasible even/heuristic/ideal baseline. Moves: move one device to another
 * position, or swap two; first improvement, deterministic (seeded PRNG). Pure: no I/O.
 */
import type { DpSolution } from './dp.ts';
import { createOrderDpContext, orderDpLatency, orderDpPlan } from './order-dp.ts';
import type { CostTable } from './stage-costs.ts';
import { mulberry32 } from '../core/random.ts';

export interface ScalableOptions {
  /** Order evaluations of the local search (after the seeds); default 10 K + 200. */
  maxEvaluations?: number;
  /** Stop after this many evaluations in a row without improvement; default 5 K + 100. */
  patience?: number;
  /** PRNG seed, for reproducible runs. */
  seed?: number;
}

export interface ScalableResult extends DpSolution {
  evaluations: number; // order-DP runs, seeds included
  order: number[]; // the order the best plan came from
}

/** Seed orders: several sortings of the devices, each also reversed. */
export function seedOrders(ct: CostTable, strongestFirstOrder: readonly number[]): number[][] {
  const idx = Array.from({ length: ct.K }, (_, k) => k);
  const by = (key: (k: number) => number) => [...idx].sort((a, b) => key(a) - key(b) || a - b);
  const layerW = ct.L > 0 ? ct.layerFlops[0] : 0;
  // Mean load seconds per layer on k (read, session creation, download of layers it lacks).
  const loadPerLayer = (k: number) => {
    let sum = 0;
    for (let l = 0; l < ct.L; l++) sum += ct.layerLoad[k * ct.L + l];
    return ct.L > 0 ? sum / ct.L : 0;
  };
  const perLayer = (k: number) => loadPerLayer(k) + layerW / ct.flops[k]; // s per layer, load + compute
  const sortings = [
    by((k) => -perLayer(k)), // slowest per layer first, fastest last
    by((k) => ct.flops[k]), // weakest compute first
    by((k) => loadPerLayer(k)), // fastest loader first
    by((k) => layerW / ct.flops[k] - loadPerLayer(k)), // compute-bound devices late
    [...strongestFirstOrder],
  ];
  const out: number[][] = [];
  for (const o of sortings) out.push(o, [...o].reverse());
  return out;
}

/** Best plan found by local search over device orders; null when nothing fits in memory. */
export function solveScalable(
  ct: CostTable,
  strongestFirstOrder: readonly number[],
  options: ScalableOptions = {},
): ScalableResult | null {
  const ctx = createOrderDpContext(ct);
  const K = ct.K;
  const budget = options.maxEvaluations ?? 10 * K + 200;
  const patience = options.patience ?? 5 * K + 100;
  const rand = mulberry32(options.seed ?? 0x7a3d);
  let evaluations = 0;

  // 1. Seeds: keep the best.
  let bestOrder: number[] = [];
  let best = Infinity;
  for (const order of seedOrders(ct, strongestFirstOrder)) {
    const v = orderDpLatency(ctx, order);
    evaluations++;
    if (v < best || bestOrder.length === 0) {
      best = v;
      bestOrder = order;
    }
  }
  // No seed fitting does not prove that nothing fits: with the embedding on the first stage and the head
  // on the last, which device comes first or last matters for memory. The search below goes on from the
  // first seed (a random walk until an order fits) and keeps any order that fits.

  // 2. Local search: random move/swap, keep strict improvements.
  const cand = new Array<number>(K);
  for (let e = 0, stall = 0; e < budget && stall < patience && K > 1; e++, stall++) {
    const a = Math.floor(rand() * K);
    let b = Math.floor(rand() * (K - 1));
    if (b >= a) b++;
    for (let k = 0; k < K; k++) cand[k] = bestOrder[k]!;
    if (rand() < 0.5) {
      const [x] = cand.splice(a, 1);
      cand.splice(b, 0, x);
    } else {
      const t = cand[a];
      cand[a] = cand[b]!;
      cand[b] = t;
    }
    const v = orderDpLatency(ctx, cand, best);
    evaluations++;
    if (v < best * (1 - 1e-12)) {
      best = v;
      bestOrder = [...cand];
      stall = -1;
    } else if (best === Infinity) {
      bestOrder = [...cand]; // nothing fits yet: walk on instead of staying next to the seed
    }
  }

  if (best === Infinity) return null;
  orderDpLatency(ctx, bestOrder, best * (1 + 1e-9));
  const plan = orderDpPlan(ctx, bestOrder)!;
  return { ...plan, evaluations, order: bestOrder };
}

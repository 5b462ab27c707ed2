/**
 * Exact DP over ONE device order: the best plan whose stages use a subsequence of `order` (devices may
 * be skipped, the order of the used ones is kept). The same recurrence as the full DP [29]-[30] with
 * "position in the order" instead of the device set, so it costs O(K L (K + L)) instead of O(K L^2 2^K).
 * The scalable planner searches over orders with it. Pure: no I/O.
 */
import type { DpSolution } from './dp.ts';
import { loadPrefixSums, memoryTable, stageNeed } from './dp.ts';
import { exitTime, type CostTable } from './stage-costs.ts';
import type { PlanStage } from './types.ts';

/** Reusable buffers and precomputed costs for many order evaluations of one problem. */
export interface OrderDpContext {
  ct: CostTable;
  prefLoad: Float64Array; // [K * (L+1)] per device, prefix sums of the layers' load seconds
  prefW: Float64Array; // [L+1] prefix sums of W_l, FLOP
  /** [K * K] sender a is never a worse predecessor than sender b: up_a >= up_b and lambda(a, r) <= lambda(b, r) for every r. */
  dominates: Uint8Array;
  memNeed: Float64Array; // [(L+1)^2] memory need of range i..j-1
  commBits: Float64Array; // [L+1] 8 A of the activation crossing cut i
  value: Float64Array; // [K * (L+1)] best finish with order[n] ending at j
  backI: Int32Array;
  backN: Int32Array; // predecessor position, -1 = first stage
  sortedX: Float64Array; // [(L+1) * K] per cut i: finite predecessor values, ascending
  sortedN: Int32Array; // their positions
  sortedCount: Int32Array; // [L+1]
  prefC: Float64Array; // [K] scratch: prefix min of comm over the sorted predecessors
  prefArg: Int32Array; // [K]
  sufY: Float64Array; // [K+1] scratch: suffix min of (x + comm)
  sufArg: Int32Array; // [K+1]
}

export function createOrderDpContext(ct: CostTable): OrderDpContext {
  const { L, K } = ct;
  const W = L + 1;
  const prefW = new Float64Array(W);
  for (let l = 0; l < L; l++) prefW[l + 1] = prefW[l] + ct.layerFlops[l];
  const commBits = new Float64Array(W);
  for (let i = 1; i <= L; i++) commBits[i] = 8 * ct.layerAct[i - 1];
  const dominates = new Uint8Array(K * K);
  for (let a = 0; a < K; a++) {
    for (let b = 0; b < K; b++) {
      let ok = ct.up[a] >= ct.up[b];
      for (let r = 0; ok && r < K; r++) ok = ct.hopLatency[a * K + r] <= ct.hopLatency[b * K + r];
      dominates[a * K + b] = ok ? 1 : 0;
    }
  }
  return {
    ct,
    prefLoad: loadPrefixSums(ct),
    prefW,
    dominates,
    memNeed: memoryTable(ct),
    commBits,
    value: new Float64Array(K * W),
    backI: new Int32Array(K * W),
    backN: new Int32Array(K * W),
    sortedX: new Float64Array(W * K),
    sortedN: new Int32Array(W * K),
    sortedCount: new Int32Array(W),
    prefC: new Float64Array(K),
    prefArg: new Int32Array(K),
    sufY: new Float64Array(K + 1),
    sufArg: new Int32Array(K + 1),
  };
}

/**
 * Best latency over plans using a subsequence of `order` (device indices, each at most once).
 * Returns Infinity when nothing fits, or when nothing is at most `bound` (partial plans slower than
 * `bound` are pruned: a stage never finishes before its predecessor). Call `orderDpPlan` right after
 * to rebuild the plan.
 */
export function orderDpLatency(ctx: OrderDpContext, order: readonly number[], bound = Infinity): number {
  const { ct, prefLoad, prefW, dominates, memNeed, commBits, value, backI, backN, sortedX, sortedN, sortedCount } = ctx;
  const { L, K } = ct;
  const W = L + 1;
  const N = order.length;
  const embedW = ct.embed?.flops ?? 0;
  const headW = ct.head?.flops ?? 0;
  value.fill(Infinity, 0, N * W);
  sortedCount.fill(0);
  let best = Infinity;

  for (let n = 0; n < N; n++) {
    const d = order[n];
    const row = n * W;
    const invFlops = 1 / ct.flops[d];
    const mem = ct.memory[d];
    const pl = d * W; // this device's row of load prefix sums

    // First stage on d: layers 0..j-1 [30] (after a fixed upstream, if any: max(load, its finish) + hop).
    for (let j = 1; j <= L; j++) {
      if (stageNeed(ct, memNeed, d, 0, j) > mem) {
        if (j < L) break;
        continue;
      }
      const last = j === L;
      const load = ct.stageFixed[d] + prefLoad[pl + j] + ct.embedLoad[d] + (last ? ct.headLoad[d] : 0);
      const v =
        (ct.entry ? Math.max(load, ct.entry.finish) + ct.entry.comm[d] : load) +
        (prefW[j] + embedW + (last ? headW : 0)) * invFlops;
      if (v > bound) break; // grows with j
      value[row + j] = v;
      backI[row + j] = 0;
      backN[row + j] = -1;
    }

    // Later stage on d after a cut i, from any earlier position m [29], with the sorted-predecessor sweep
    // explained in dp.ts: min over m of max(load, x_m) + c_m = min(load + min_{x<=load} c, min_{x>load} (x + c)).
    for (let i = 1; i < L; i++) {
      const cnt = sortedCount[i];
      if (cnt === 0) continue;
      if (stageNeed(ct, memNeed, d, i, i + 1) > mem) continue;
      const base = i * ct.K;
      const bits = commBits[i];
      // Prefix min of c and suffix min of x + c, in ascending x order (pointer-walked below).
      let prefC = Infinity,
        prefArg = -1;
      const { prefC: pc, prefArg: pa, sufY: sy, sufArg: sa } = ctx;
      for (let k = 0; k < cnt; k++) {
        const m = sortedN[base + k];
        const c = ct.hopLatency[order[m] * K + d] + bits / Math.min(ct.up[order[m]], ct.down[d]);
        if (c < prefC) {
          prefC = c;
          prefArg = m;
        }
        pc[k] = prefC;
        pa[k] = prefArg;
      }
      sy[cnt] = Infinity;
      for (let k = cnt - 1; k >= 0; k--) {
        const m = sortedN[base + k];
        const y = sortedX[base + k] + ct.hopLatency[order[m] * K + d] + bits / Math.min(ct.up[order[m]], ct.down[d]);
        if (y < sy[k + 1]) {
          sy[k] = y;
          sa[k] = m;
        } else {
          sy[k] = sy[k + 1]!;
          sa[k] = sa[k + 1]!;
        }
      }
      let p = 0;
      for (let j = i + 1; j <= L; j++) {
        if (stageNeed(ct, memNeed, d, i, j) > mem) {
          if (j < L) break;
          continue;
        }
        const last = j === L;
        const load = ct.stageFixed[d] + prefLoad[pl + j] - prefLoad[pl + i] + (last ? ct.headLoad[d] : 0);
        const comp = (prefW[j] - prefW[i] + (last ? headW : 0)) * invFlops;
        while (p < cnt && sortedX[base + p] <= load) p++;
        const early = p > 0 ? load + pc[p - 1] : Infinity;
        const late = sy[p];
        const v = Math.min(early, late) + comp;
        if (v > bound) break; // grows with j
        if (v < value[row + j]) {
          value[row + j] = v;
          backI[row + j] = i;
          backN[row + j] = early <= late ? pa[p - 1] : sa[p];
        }
      }
    }

    // Row n is final: add its values to the per-cut predecessor lists for later positions. A list keeps
    // only undominated predecessors, sorted by finish x: one that finishes no earlier than another AND
    // whose sender never beats it (ctx.dominates: no faster uplink, no shorter hop to any receiver) is
    // never the better choice, because comm = lambda + 8A / min(up_sender, down_receiver) cannot be smaller.
    for (let i = 1; i < L; i++) {
      const x = value[row + i];
      if (x === Infinity) continue;
      const base = i * K;
      const cnt = sortedCount[i];
      let pos = 0; // insertion point: after every entry with x' <= x
      while (pos < cnt && sortedX[base + pos] <= x) pos++;
      let dropped = false;
      for (let k = 0; k < pos && !dropped; k++) dropped = dominates[order[sortedN[base + k]] * K + d] === 1;
      if (dropped) continue;
      // Entries after pos that this one dominates go; the rest shift right by one to make room.
      let keep = pos;
      for (let k = pos; k < cnt; k++) {
        if (dominates[d * K + order[sortedN[base + k]]] === 1) continue;
        sortedX[base + keep] = sortedX[base + k]!;
        sortedN[base + keep] = sortedN[base + k]!;
        keep++;
      }
      for (let k = keep; k > pos; k--) {
        sortedX[base + k] = sortedX[base + k - 1]!;
        sortedN[base + k] = sortedN[base + k - 1]!;
      }
      sortedX[base + pos] = x;
      sortedN[base + pos] = n;
      sortedCount[i] = keep + 1;
    }
    if (value[row + L] + exitTime(ct, d) < best) best = value[row + L] + exitTime(ct, d);
  }
  return best;
}

/** Rebuilds the best plan of the last `orderDpLatency(ctx, order)` call (same order); null if none. */
export function orderDpPlan(ctx: OrderDpContext, order: readonly number[]): DpSolution | null {
  const { ct, value, backI, backN } = ctx;
  const W = ct.L + 1;
  let best = Infinity,
    bestN = -1;
  for (let n = 0; n < order.length; n++) {
    const v = value[n * W + ct.L] + exitTime(ct, order[n]);
    if (v < best) {
      best = v;
      bestN = n;
    }
  }
  if (bestN < 0) return null;
  const stages: PlanStage[] = [];
  let n = bestN,
    j = ct.L;
  while (n >= 0) {
    const i = backI[n * W + j];
    stages.push({ device: order[n], layers: { start: i, end: j } });
    const prev = backN[n * W + j];
    n = prev;
    j = i;
  }
  stages.reverse();
  return { latency: best, stages };
}

/** Convenience: the best plan over one order. */
export function solveOrderDp(ct: CostTable, order: readonly number[]): DpSolution | null {
  const ctx = createOrderDpContext(ct);
  orderDpLatency(ctx, order);
  return orderDpPlan(ctx, order);
}

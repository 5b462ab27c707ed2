/**
 * The exact cold-start DP [29]-[31], made fast.
 *
 * State (S, j, d): S = bitmask of the devices used so far, j = layers 1..j are assigned, d = the device
 * holding the last segment. DP(S, j, d) = the least finish time of layer j over all plans of that shape.
 *
 *   DP(S, j, d) = min over i < j, d' in S\{d}, (layers i+1..j fit on d) of
 *                 max(load(i+1..j, d), DP(S\{d}, i, d')) + comm(d', d) + comp(i+1..j, d)     [29]
 *   DP({d}, j, d) = load(1..j, d) + comp(1..j, d)          if layers 1..j fit on d             [30]
 *   T* = min over S, d of DP(S, L, d)                                                         [31]
 *
 * load and comm carry the browser terms of docs/cost-model.md (session creation, warm-up, per-hop latency,
 * per-device per-unit loads); a fixed upstream (ct.entry) and downstream (ct.exit) serve repair planning.
 * None of them changes the recurrence's structure, so it stays exact.
 *
 * Speed-ups over the textbook O(K^2 L^2 2^K) loop (the result is the same):
 * - costs of any layer range come from prefix sums, O(1);
 * - the DP is "pushed" forward: for a fixed predecessor set S' and cut i, the predecessor values
 *   x_d' = DP(S', i, d') are sorted once; for each new device d, the best predecessor for ANY load
 *   time ld is  min( ld + min_{x_d' <= ld} c_d',  min_{x_d' > ld} (x_d' + c_d') )  with c_d' = comm(d', d),
 *   because max(ld, x) + c is ld + c when x <= ld and x + c otherwise. ld grows with j, so one pointer
 *   walks the sorted list while j sweeps: the min over d' leaves the inner loop (O(K + L) per (S', i, d));
 * - states that cannot be reached (too few layers for the devices) or do not fit in memory are skipped,
 *   and states worse than a known feasible plan's latency (optional upper bound) are pruned.
 * Pure: no I/O.
 */
import { exitTime, type CostTable } from './stage-costs.ts';
import type { PlanStage } from './types.ts';

export interface DpSolution {
  latency: number; // T*, seconds
  stages: PlanStage[]; // pipeline order
}

export interface DpOptions {
  /** Latency of a known feasible plan; states above it are pruned (exactness is kept). */
  upperBound?: number;
}

/** Default limit on DP states (2^K K (L+1), 13 bytes each) for planOptimal's exact path: about K = 12 at L = 80 (~80 MB). */
export const MAX_DP_STATES = 6_000_000;

/** Number of DP states for K devices and L layers. */
export function dpStateCount(K: number, L: number): number {
  return 2 ** K * K * (L + 1);
}

/**
 * Memory need of every range i..j-1 (0-based half-open), [22] or the 'sum' model, less the embedding's and
 * the head's bytes, which depend on the device (`stageNeed` adds them): a (L+1)x(L+1) table.
 */
export function memoryTable(ct: CostTable): Float64Array {
  const L = ct.L;
  const need = new Float64Array((L + 1) * (L + 1)).fill(Infinity);
  for (let i = 0; i < L; i++) {
    let params = 0;
    let actMax = i === 0 && ct.embed ? ct.embed.activationBytes : 0;
    let actSum = actMax;
    for (let j = i + 1; j <= L; j++) {
      params += ct.layerParams[j - 1];
      actMax = Math.max(actMax, ct.layerAct[j - 1]);
      actSum += ct.layerAct[j - 1];
      let am = actMax,
        as = actSum;
      if (j === L && ct.head) {
        am = Math.max(am, ct.head.activationBytes);
        as += ct.head.activationBytes;
      }
      need[i * (L + 1) + j] = params + (ct.memoryModel === 'max' ? am : as);
    }
  }
  return need;
}

/** Memory need of range i..j-1 on device d, bytes: `memoryTable`'s entry plus the embedding and head on d. */
export function stageNeed(ct: CostTable, memNeed: Float64Array, d: number, i: number, j: number): number {
  return memNeed[i * (ct.L + 1) + j] + (i === 0 ? ct.embedMemory[d] : 0) + (j === ct.L ? ct.headMemory[d] : 0);
}

/** Per device d, the load seconds of layers 0..j-1 at [d * (L+1) + j] (no fixed, embedding or head terms). */
export function loadPrefixSums(ct: CostTable): Float64Array {
  const W = ct.L + 1;
  const pref = new Float64Array(ct.K * W);
  for (let d = 0; d < ct.K; d++) {
    for (let l = 0; l < ct.L; l++) pref[d * W + l + 1] = pref[d * W + l] + ct.layerLoad[d * ct.L + l];
  }
  return pref;
}

/** Solves the problem exactly; null when no plan fits in memory. */
export function solveExactDp(ct: CostTable, options: DpOptions = {}): DpSolution | null {
  const { L, K } = ct;
  const W = L + 1; // stride of the j axis
  const NS = 1 << K;
  const bound = options.upperBound === undefined ? Infinity : options.upperBound * (1 + 1e-9);

  // Prefix sums over layers: W (FLOP) for layers 0..j-1 at index j, and per device the load seconds.
  const prefW = new Float64Array(W);
  for (let l = 0; l < L; l++) prefW[l + 1] = prefW[l] + ct.layerFlops[l];
  const prefLoad = loadPrefixSums(ct); // [d * W + j], seconds
  const embedW = ct.embed?.flops ?? 0;
  const headW = ct.head?.flops ?? 0;
  const memNeed = memoryTable(ct); // bytes, [i * W + j]
  // comm(d', d) = lambda(d', d) + 8 A_i / min(up_d', down_d): latency plus the boundary bits times the inverse rate.
  const commBits = new Float64Array(W);
  for (let i = 1; i <= L; i++) commBits[i] = 8 * ct.layerAct[i - 1];
  const invRate = new Float64Array(K * K); // [d' * K + d], s/bit
  for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) invRate[a * K + b] = 1 / Math.min(ct.up[a], ct.down[b]);
  const lat = ct.hopLatency; // [d' * K + d], seconds

  // DP(S, j, d) at ((S * K + d) * W + j); back-pointers: cut i and predecessor device d' (-1 = first stage).
  const value = new Float64Array(NS * K * W).fill(Infinity);
  const backI = new Int32Array(NS * K * W);
  const backD = new Int8Array(NS * K * W).fill(-1);

  // [30] base case: device d alone holds layers 0..j-1 (the first stage), if they fit. After a fixed
  // upstream (repair) it waits for it and receives from it: max(load, its finish) + hop.
  for (let d = 0; d < K; d++) {
    const row = ((1 << d) * K + d) * W;
    for (let j = 1; j <= L; j++) {
      if (stageNeed(ct, memNeed, d, 0, j) > ct.memory[d]) {
        if (j < L) break; // memory need grows with j (the head only adds at j = L)
        continue;
      }
      const load = ct.stageFixed[d] + prefLoad[d * W + j] + ct.embedLoad[d] + (j === L ? ct.headLoad[d] : 0);
      const comp = (prefW[j] + embedW + (j === L ? headW : 0)) / ct.flops[d];
      const v = (ct.entry ? Math.max(load, ct.entry.finish) + ct.entry.comm[d] : load) + comp;
      if (v > bound) break; // grows with j
      value[row + j] = v;
      backI[row + j] = 0;
    }
  }

  // Scratch for one (S', i): predecessors sorted by their finish time x.
  const candX = new Float64Array(K); // x_d' = DP(S', i, d'), ascending
  const candD = new Int32Array(K); // d'
  const prefC = new Float64Array(K); // min c over candidates 0..k
  const prefArg = new Int32Array(K);
  const sufY = new Float64Array(K + 1); // min (x + c) over candidates k..n-1
  const sufArg = new Int32Array(K + 1);

  // [29] push every finished state set S' (ascending, so all its subsets are done) to S' + {d}.
  for (let sPrev = 1; sPrev < NS; sPrev++) {
    const used = popcount(sPrev);
    if (used >= K || used >= L) continue; // no device left to add, or no layer left for it
    for (let i = used; i < L; i++) {
      // Gather the finite predecessors DP(S', i, d') and sort them by x (insertion sort, n <= K).
      let n = 0;
      for (let dp = 0; dp < K; dp++) {
        if (((sPrev >> dp) & 1) === 0) continue;
        const x = value[(sPrev * K + dp) * W + i];
        if (x === Infinity) continue;
        let k = n++;
        while (k > 0 && candX[k - 1] > x) {
          candX[k] = candX[k - 1]!;
          candD[k] = candD[k - 1]!;
          k--;
        }
        candX[k] = x;
        candD[k] = dp;
      }
      if (n === 0) continue;

      for (let d = 0; d < K; d++) {
        if ((sPrev >> d) & 1) continue;
        if (stageNeed(ct, memNeed, d, i, i + 1) > ct.memory[d]) continue; // not even one layer fits
        // Hand-over costs c_d' = comm(d', d) in sorted order: prefix min of c, suffix min of x + c.
        const bits = commBits[i];
        for (let k = 0; k < n; k++) {
          const c = lat[candD[k] * K + d] + bits * invRate[candD[k] * K + d];
          if (k === 0 || c < prefC[k - 1]) {
            prefC[k] = c;
            prefArg[k] = candD[k]!;
          } else {
            prefC[k] = prefC[k - 1]!;
            prefArg[k] = prefArg[k - 1]!;
          }
        }
        sufY[n] = Infinity;
        for (let k = n - 1; k >= 0; k--) {
          const y = candX[k] + lat[candD[k] * K + d] + bits * invRate[candD[k] * K + d];
          if (y < sufY[k + 1]) {
            sufY[k] = y;
            sufArg[k] = candD[k]!;
          } else {
            sufY[k] = sufY[k + 1]!;
            sufArg[k] = sufArg[k + 1]!;
          }
        }

        // Sweep the new segment's end j; its load time grows, so the split point p only moves right.
        const row = ((sPrev | (1 << d)) * K + d) * W;
        const invFlops = 1 / ct.flops[d];
        const fixed = ct.stageFixed[d] - prefLoad[d * W + i];
        let p = 0; // candidates 0..p-1 finished before this segment's load (x <= load)
        for (let j = i + 1; j <= L; j++) {
          if (stageNeed(ct, memNeed, d, i, j) > ct.memory[d]) {
            if (j < L) break;
            continue;
          }
          const last = j === L;
          const load = fixed + prefLoad[d * W + j] + (last ? ct.headLoad[d] : 0); // [19]
          const comp = (prefW[j] - prefW[i] + (last ? headW : 0)) * invFlops; // [21]
          while (p < n && candX[p] <= load) p++;
          // start + comm = min over d' of max(load, x_d') + c_d'   ([17], [18], [20])
          const early = p > 0 ? load + prefC[p - 1] : Infinity; // upstream already done: wait for own load
          const late = sufY[p]; // own load done first: wait for upstream
          const v = Math.min(early, late) + comp;
          if (v > bound) break; // v grows with j
          if (v < value[row + j]) {
            value[row + j] = v;
            backI[row + j] = i;
            backD[row + j] = early <= late ? prefArg[p - 1] : sufArg[p];
          }
        }
      }
    }
  }

  // [31] best final state, then follow the back-pointers to rebuild the plan.
  let best = Infinity,
    bestS = -1,
    bestD = -1;
  for (let s = 1; s < NS; s++) {
    for (let d = 0; d < K; d++) {
      if (((s >> d) & 1) === 0) continue;
      const v = value[(s * K + d) * W + L] + exitTime(ct, d);
      if (v < best) {
        best = v;
        bestS = s;
        bestD = d;
      }
    }
  }
  if (best === Infinity) return null;
  const stages: PlanStage[] = [];
  let s = bestS,
    d = bestD,
    j = L;
  for (;;) {
    const at = (s * K + d) * W + j;
    const i = backI[at];
    stages.push({ device: d, layers: { start: i, end: j } });
    const prev = backD[at];
    if (prev < 0) break;
    s ^= 1 << d;
    d = prev;
    j = i;
  }
  stages.reverse();
  return { latency: best, stages };
}

function popcount(x: number): number {
  let c = 0;
  while (x) {
    x &= x - 1;
    c++;
  }
  return c;
}

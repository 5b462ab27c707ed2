/**
 * The textbook DP [29]-[31], written exactly as the recurrence reads (with the paper's pseudocode slips
 * fixed: compare with DP(S, j, d), memory for layers i+1..j, memory test in the base case). It is
 * O(K^2 L^3 2^K) with direct sums, kept only as a test oracle for the fast DP on instances too large
 * for brute force. Pure: no I/O.
 */
import { commTime, exitTime, stageCompute, stageLoad, stageMemory, type CostTable } from './stage-costs.ts';

/** T*, or Infinity when nothing fits. Layers here are 1-based as in the paper: segment i+1..j. */
export function referenceDpLatency(ct: CostTable): number {
  const { L, K } = ct;
  const NS = 1 << K;
  // dp[S][j][d]
  const dp: number[][][] = Array.from({ length: NS }, () =>
    Array.from({ length: L + 1 }, () => new Array<number>(K).fill(Infinity)),
  );
  const fits = (d: number, i: number, j: number) => stageMemory(ct, i, j, d) <= ct.memory[d]; // layers i+1..j = 0-based i..j-1

  // [30] DP({d}, j, d) = Tload(1, j, d) + Tcomp(1, j, d), if layers 1..j fit on d
  // (after a fixed upstream: max(Tload, its finish) + the hop from it, as in [29])
  const entry = (d: number, load: number) => (ct.entry ? Math.max(load, ct.entry.finish) + ct.entry.comm[d] : load);
  for (let d = 0; d < K; d++) {
    for (let j = 1; j <= L; j++) {
      if (fits(d, 0, j)) dp[1 << d][j][d] = entry(d, stageLoad(ct, d, 0, j)) + stageCompute(ct, d, 0, j);
    }
  }
  // [29] in order of increasing set size
  const sets = Array.from({ length: NS }, (_, s) => s).sort((a, b) => bits(a) - bits(b));
  for (const S of sets) {
    if (bits(S) < 2) continue;
    for (let d = 0; d < K; d++) {
      if (((S >> d) & 1) === 0) continue;
      const rest = S ^ (1 << d);
      for (let j = 1; j <= L; j++) {
        for (let i = 1; i < j; i++) {
          if (!fits(d, i, j)) continue;
          for (let dp2 = 0; dp2 < K; dp2++) {
            if (((rest >> dp2) & 1) === 0) continue;
            const prev = dp[rest][i][dp2];
            if (prev === Infinity) continue;
            const v = Math.max(stageLoad(ct, d, i, j), prev) + commTime(ct, dp2, d, i) + stageCompute(ct, d, i, j);
            if (v < dp[S][j][d]) dp[S][j][d] = v;
          }
        }
      }
    }
  }
  // [31]
  let best = Infinity;
  for (let S = 1; S < NS; S++) for (let d = 0; d < K; d++) best = Math.min(best, dp[S][L][d] + exitTime(ct, d));
  return best;
}

function bits(x: number): number {
  let c = 0;
  for (; x; x &= x - 1) c++;
  return c;
}

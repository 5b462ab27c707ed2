/**
 * Decode rate of a plan (pure): after the first token each new token goes once around the ring. A step
 * is every stage's compute of one token, plus each hand-over of one token's hidden state, plus the
 * sampled token's trip from the last stage back to the first (none with one stage):
 *
 *   step = sum_n W_n(1) / c^dec_{k_n}  +  sum_{n>1} comm(k_{n-1}, k_n, A(1))  +  comm(k_N, k_1, 4 bytes)
 *   tokens/s = 1 / step
 *
 * c^dec_k is the calibrated decode FLOP/s where known, else c*_k U_k(1) [9] (the profile's).
 */
import { TOKEN_FRAME_BYTES } from './calibration-samples.ts';
import { effectiveFlops } from './devices.ts';
import { buildCostTable, stageFlops } from './stage-costs.ts';
import type { PlanProblem, PlanStage } from './types.ts';

/** Seconds of one decode step of `stages`; `decodeFlops[k]` overrides device k's decode FLOP/s. */
export function decodeStepSeconds(
  problem: PlanProblem,
  stages: readonly PlanStage[],
  decodeFlops: readonly (number | null)[] = [],
): number {
  const ct = buildCostTable({ ...problem, tokens: 1 });
  const rate = (k: number) => decodeFlops[k] ?? effectiveFlops(problem.devices[k], 1);
  const hop = (a: number, b: number, bytes: number) =>
    ct.hopLatency[a * ct.K + b] + (8 * bytes) / Math.min(ct.up[a], ct.down[b]);
  let sec = 0;
  stages.forEach((s, n) => {
    sec += stageFlops(ct, s.layers.start, s.layers.end) / rate(s.device);
    if (n > 0) sec += hop(stages[n - 1].device, s.device, ct.layerAct[s.layers.start - 1]);
  });
  if (stages.length > 1) sec += hop(stages[stages.length - 1].device, stages[0].device, TOKEN_FRAME_BYTES);
  return sec;
}

export function decodeTokensPerSec(
  problem: PlanProblem,
  stages: readonly PlanStage[],
  decodeFlops: readonly (number | null)[] = [],
): number {
  return 1 / decodeStepSeconds(problem, stages, decodeFlops);
}

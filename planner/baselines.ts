/**
 * The paper's baselines (section 5.2), exactly as csgo-model.md defines them:
 * - ideal: all layers on the strongest device, memory ignored (optionally with its own read speed);
 * - even: floor(L/K) layers per device, the remainder one layer each to the strongest devices first;
 *   pipeline order strongest first;
 * - heuristic: layers in proportion to H_k = 2 c_k r_k / (c_k + r_k) (c_k effective TFLOPS, r_k MB/s),
 *   rounded, the rounding residue to the strongest device; order strongest first.
 * "Strongest" = highest peak FLOP/s (ties: higher effective FLOP/s at t, then lower index), which is
 * the paper's device numbering 1 -> 2 -> 3 -> 4.
 * Baselines do not enforce memory; their timelines report it (memoryOk). Pure: no I/O.
 */
import { effectiveFlops } from './devices.ts';
import { evaluatePlan } from './timing.ts';
import type { PlanProblem, PlanStage, Timeline } from './types.ts';

export type BaselineName = 'ideal' | 'even' | 'heuristic';
export const BASELINES: readonly BaselineName[] = ['ideal', 'even', 'heuristic'];

export interface BaselineOptions {
  /** Read speed (bytes/s) of the strongest device in the ideal baseline only (the paper uses 6000 MB/s). */
  idealReadBytesPerSec?: number;
}

/** Device indices, strongest first. */
export function strongestFirst(p: PlanProblem): number[] {
  const eff = p.devices.map((d) => effectiveFlops(d, p.tokens));
  return p.devices
    .map((_, i) => i)
    .sort((a, b) => p.devices[b].peakFlops - p.devices[a].peakFlops || eff[b] - eff[a] || a - b);
}

/** Stages from per-device layer counts, in the given order, skipping devices with no layers. */
export function stagesFromCounts(order: readonly number[], counts: readonly number[]): PlanStage[] {
  const stages: PlanStage[] = [];
  let start = 0;
  order.forEach((device, n) => {
    const c = counts[n];
    if (c <= 0) return;
    stages.push({ device, layers: { start, end: start + c } });
    start += c;
  });
  return stages;
}

/** Ideal single device: all L layers on the strongest device. */
export function idealPlan(p: PlanProblem): PlanStage[] {
  return [{ device: strongestFirst(p)[0], layers: { start: 0, end: p.model.num_hidden_layers } }];
}

/** Even split: floor(L/K) each, the remainder one each to the strongest first; order strongest first. */
export function evenPlan(p: PlanProblem): PlanStage[] {
  const L = p.model.num_hidden_layers;
  const order = strongestFirst(p);
  const K = order.length;
  const base = Math.floor(L / K);
  const counts = order.map((_, n) => base + (n < L % K ? 1 : 0));
  return stagesFromCounts(order, counts);
}

/** Layer counts in proportion to the harmonic mean of compute (TFLOPS) and read speed (MB/s). */
export function heuristicCounts(p: PlanProblem, order: readonly number[]): number[] {
  const L = p.model.num_hidden_layers;
  const h = order.map((k) => {
    const c = effectiveFlops(p.devices[k], p.tokens) / 1e12; // TFLOPS
    const r = p.devices[k].readBytesPerSec / 2 ** 20; // MB/s (MiB/s)
    return (2 * c * r) / (c + r);
  });
  const total = h.reduce((a, b) => a + b, 0);
  const counts = h.map((x) => Math.round((L * x) / total));
  // The rounding residue goes to the strongest device (if it cannot absorb a negative residue, the next).
  let residue = L - counts.reduce((a, b) => a + b, 0);
  for (let n = 0; residue !== 0 && n < counts.length; n++) {
    const give = residue > 0 ? residue : Math.max(residue, -counts[n]);
    counts[n] += give;
    residue -= give;
  }
  return counts;
}

/** Heuristic split (see heuristicCounts); order strongest first. */
export function heuristicPlan(p: PlanProblem): PlanStage[] {
  const order = strongestFirst(p);
  return stagesFromCounts(order, heuristicCounts(p, order));
}

/** A baseline's plan and its timeline. */
export interface BaselineResult {
  name: BaselineName;
  stages: PlanStage[];
  timeline: Timeline;
}

/** Evaluates one baseline under the timing model. */
export function runBaseline(p: PlanProblem, name: BaselineName, options: BaselineOptions = {}): BaselineResult {
  switch (name) {
    case 'ideal': {
      const stages = idealPlan(p);
      const strongest = stages[0].device;
      const override = options.idealReadBytesPerSec;
      const problem =
        override === undefined
          ? p
          : { ...p, devices: p.devices.map((d, i) => (i === strongest ? { ...d, readBytesPerSec: override } : d)) };
      return { name, stages, timeline: evaluatePlan(problem, stages) };
    }
    case 'even': {
      const stages = evenPlan(p);
      return { name, stages, timeline: evaluatePlan(p, stages) };
    }
    case 'heuristic': {
      const stages = heuristicPlan(p);
      return { name, stages, timeline: evaluatePlan(p, stages) };
    }
  }
}

/** A baseline's timeline by name; 'single' is an alias of 'ideal' (the single strongest device). */
export function baselinePlan(p: PlanProblem, name: BaselineName | 'single', options: BaselineOptions = {}): Timeline {
  return runBaseline(p, name === 'single' ? 'ideal' : name, options).timeline;
}

import { describe, expect, it } from 'vitest';
import {
  baselinePlan,
  evenPlan,
  heuristicCounts,
  heuristicPlan,
  idealPlan,
  runBaseline,
  strongestFirst,
} from './baselines.ts';
import { layerCost } from './cost-model.ts';
import { presetScenario } from './presets.ts';
import { scenarioBaselineOptions, scenarioProblem } from './scenario.ts';
import type { DeviceProfile, PlanProblem } from './types.ts';

const model = {
  num_hidden_layers: 10,
  hidden_size: 64,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  intermediate_size: 128,
  vocab_size: 10,
  bytesPerParam: 2,
};
// utilB huge: effective compute = peak. TFLOPS and MB/s as the heuristic's H uses them.
const dev = (name: string, tflops: number, readMBps: number): DeviceProfile => ({
  name,
  peakFlops: tflops * 1e12,
  utilA: 1,
  utilB: 100,
  readBytesPerSec: readMBps * 2 ** 20,
  memoryBytes: 1e15,
  uplinkBitsPerSec: 1e9,
  downlinkBitsPerSec: 1e9,
});
const problem = (L: number, devices: DeviceProfile[]): PlanProblem => ({
  model: { ...model, num_hidden_layers: L },
  devices,
  tokens: 8,
});
const split = (stages: { device: number; layers: { start: number; end: number } }[]) =>
  stages.map((s) => [s.device, s.layers.end - s.layers.start]);

describe('baselines (csgo-model.md, section 5.2)', () => {
  const three = [dev('weak', 10, 100), dev('strong', 30, 100), dev('mid', 20, 100)];

  it('orders devices strongest first by peak compute', () => {
    expect(strongestFirst(problem(10, three))).toEqual([1, 2, 0]);
  });

  it('ideal: all layers on the strongest device', () => {
    expect(split(idealPlan(problem(10, three)))).toEqual([[1, 10]]);
  });

  it("ideal with its own read speed (the paper's 6000 MB/s): T = L P / r + L W / c", () => {
    const p = problem(10, three);
    const c = layerCost(p.model, 8);
    const tl = runBaseline(p, 'ideal', { idealReadBytesPerSec: 6000 * 2 ** 20 }).timeline;
    expect(tl.latency).toBeCloseTo((10 * c.paramBytes) / (6000 * 2 ** 20) + (10 * c.flops) / 30e12, 12);
    expect(baselinePlan(p, 'single').latency).toBeCloseTo(
      (10 * c.paramBytes) / (100 * 2 ** 20) + (10 * c.flops) / 30e12,
      12,
    );
  });

  it('even: floor(L/K) each, remainder to the strongest first, order strongest first', () => {
    expect(split(evenPlan(problem(10, three)))).toEqual([
      [1, 4],
      [2, 3],
      [0, 3],
    ]);
    expect(split(evenPlan(problem(11, three)))).toEqual([
      [1, 4],
      [2, 4],
      [0, 3],
    ]);
    expect(split(evenPlan(problem(2, three)))).toEqual([
      [1, 1],
      [2, 1],
    ]); // L < K: the weakest gets nothing
  });

  it('heuristic: proportional to H = 2cr/(c+r), residue to the strongest', () => {
    // H = 2cr/(c+r) = 2 for (2, 2), (3, 1.5) and (6, 1.2): equal shares L/3.
    const equalH = [dev('a', 2, 2), dev('b', 3, 1.5), dev('c', 6, 1.2)];
    expect(split(heuristicPlan(problem(10, equalH)))).toEqual([
      [2, 4],
      [1, 3],
      [0, 3],
    ]); // 3.33 -> 3 each, +1 to c
    expect(split(heuristicPlan(problem(8, equalH)))).toEqual([
      [2, 2],
      [1, 3],
      [0, 3],
    ]); // 2.67 -> 3 each, -1 from c
    // H = 2 (c=2,r=2), 4 (c=6,r=3), 1 (c=1,r=1): shares 10 * (4, 2, 1) / 7 = 5.71, 2.86, 1.43 -> 6, 3, 1
    const mixed = [dev('a', 2, 2), dev('b', 6, 3), dev('c', 1, 1)];
    expect(heuristicCounts(problem(10, mixed), strongestFirst(problem(10, mixed)))).toEqual([6, 3, 1]);
  });

  it('paper scenario: even 10 each D1->D4; heuristic 12/10/9/9 at t=256 and 18/10/7/5 at t=8192', () => {
    // Hand check at t = 256: c = 8.249, 6.995, 6.000, 6.000 TFLOPS; H ~ 16.47, 13.97, 11.98, 11.96 -> 12.1, 10.3, 8.8, 8.8.
    // At t = 8192: c = 65.99, 34.97, 24.00, 16.00; H ~ 130.3, 69.3, 47.6, 31.7 -> 18.7, 9.9, 6.8, 4.6 = 19+10+7+5 = 41, residue -1 to D1.
    const s = presetScenario('csgo-paper');
    expect(split(evenPlan(scenarioProblem(s, 256)))).toEqual([
      [0, 10],
      [1, 10],
      [2, 10],
      [3, 10],
    ]);
    expect(split(heuristicPlan(scenarioProblem(s, 256)))).toEqual([
      [0, 12],
      [1, 10],
      [2, 9],
      [3, 9],
    ]);
    expect(split(heuristicPlan(scenarioProblem(s, 8192)))).toEqual([
      [0, 18],
      [1, 10],
      [2, 7],
      [3, 5],
    ]);
    // The ideal baseline ignores memory: 40 x 630 MiB does not fit D1's 20 GB, and it is reported so.
    const ideal = runBaseline(scenarioProblem(s, 256), 'ideal', scenarioBaselineOptions(s)).timeline;
    expect(ideal.memoryOk).toBe(false);
  });
});

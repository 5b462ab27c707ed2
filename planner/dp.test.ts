import { describe, expect, it } from 'vitest';
import { bruteForce } from './brute-force.ts';
import { solveExactDp } from './dp.ts';
import { referenceDpLatency } from './dp-reference.ts';
import { TandemError } from '../core/errors.ts';
import { planOptimal } from './plan.ts';
import { randomProblems } from './random-problems.ts';
import { buildCostTable, stageMemory } from './stage-costs.ts';
import { checkPlanShape, evaluateWithCosts } from './timing.ts';
import type { DeviceProfile, PlanProblem } from './types.ts';

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

describe('exact DP vs brute force', () => {
  // 320 seeded instances: K <= 5, L <= 10, both memory models, half with tight memory, some with the
  // embedding and head counted.
  const problems: PlanProblem[] = [];
  for (const memoryModel of ['max', 'sum'] as const) {
    for (const memory of ['loose', 'tight'] as const) {
      problems.push(
        ...randomProblems(
          memoryModel === 'max' ? 11 : 12 + (memory === 'tight' ? 100 : 0),
          80,
          { K: [1, 5], L: [1, 10] },
          {
            memoryModel,
            memory,
            embeddingAndHead: memory === 'tight',
          },
        ),
      );
    }
  }

  it('finds the brute-force optimum on 320 random instances, and its plan is valid and fits', () => {
    let infeasible = 0,
      binding = 0;
    for (const p of problems) {
      const ct = buildCostTable(p);
      const bf = bruteForce(ct).best;
      const dp = solveExactDp(ct);
      if (bf === null) {
        infeasible++;
        expect(dp).toBeNull();
        expect(() => planOptimal(p)).toThrow(expect.objectContaining({ code: 'plan-infeasible' }));
        continue;
      }
      expect(dp).not.toBeNull();
      expect(close(dp!.latency, bf.latency), `DP ${dp!.latency} vs brute force ${bf.latency}`).toBe(true);
      // [13]-[16]: contiguous, non-empty, cover all layers, each device at most once; and memory [22].
      expect(() => checkPlanShape(ct.L, ct.K, dp!.stages)).not.toThrow();
      for (const s of dp!.stages)
        expect(stageMemory(ct, s.layers.start, s.layers.end, s.device)).toBeLessThanOrEqual(ct.memory[s.device]);
      // evaluate(plan of DP) == DP value
      const ev = evaluateWithCosts(ct, dp!.stages);
      expect(close(ev.latency, dp!.latency)).toBe(true);
      expect(ev.memoryOk).toBe(true);
      // planOptimal (exact, with upper-bound pruning) agrees
      const po = planOptimal(p);
      expect(po.method).toBe('exact');
      expect(close(po.latency, bf.latency)).toBe(true);
      // memory binding: the optimum without memory limits is strictly better
      const free = solveExactDp(
        buildCostTable({ ...p, devices: p.devices.map((d) => ({ ...d, memoryBytes: Infinity })) }),
      )!;
      if (free.latency < bf.latency * (1 - 1e-9)) binding++;
    }
    expect(problems.length).toBeGreaterThanOrEqual(300);
    expect(infeasible).toBeGreaterThanOrEqual(5);
    expect(binding).toBeGreaterThanOrEqual(20);
  });
});

describe('fast DP vs the textbook recurrence', () => {
  it('matches the textbook O(K^2 L^3 2^K) DP on 30 medium instances (K <= 6, L <= 14)', () => {
    const problems = [
      ...randomProblems(21, 15, { K: [5, 6], L: [8, 14] }, { memoryModel: 'max', memory: 'tight' }),
      ...randomProblems(
        22,
        15,
        { K: [5, 6], L: [8, 14] },
        { memoryModel: 'sum', memory: 'loose', embeddingAndHead: true },
      ),
    ];
    for (const p of problems) {
      const ct = buildCostTable(p);
      const ref = referenceDpLatency(ct);
      const dp = solveExactDp(ct);
      if (ref === Infinity) expect(dp).toBeNull();
      else expect(close(dp!.latency, ref), `${dp!.latency} vs ${ref}`).toBe(true);
    }
  });

  it('the textbook DP itself matches brute force (the oracle is right)', () => {
    for (const p of randomProblems(23, 20, { K: [2, 4], L: [2, 7] }, { memory: 'tight' })) {
      const ct = buildCostTable(p);
      const bf = bruteForce(ct).best;
      expect(
        close(referenceDpLatency(ct), bf?.latency ?? Infinity) || (bf === null && referenceDpLatency(ct) === Infinity),
      ).toBe(true);
    }
  });
});

describe('regressions: the paper pseudocode slips are not copied', () => {
  const model = {
    num_hidden_layers: 4,
    hidden_size: 64,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    intermediate_size: 128,
    vocab_size: 100,
    bytesPerParam: 2,
  };
  const device = (name: string, memoryBytes: number, peakFlops = 1e12): DeviceProfile => ({
    name,
    peakFlops,
    utilA: 1,
    utilB: 1,
    readBytesPerSec: 1e6,
    memoryBytes,
    uplinkBitsPerSec: 1e9,
    downlinkBitsPerSec: 1e9,
  });
  const layerMem = (p: PlanProblem, n: number) => stageMemory(buildCostTable(p), 0, n, null);

  it('checks memory for layers i+1..j (not i..j): two devices that hold exactly 2 of 4 layers each', () => {
    const probe: PlanProblem = { model, devices: [device('a', 1e15)], tokens: 8 };
    const two = layerMem(probe, 2);
    const p: PlanProblem = { model, devices: [device('a', two), device('b', two)], tokens: 8 };
    const plan = planOptimal(p);
    expect(plan.stages.map((s) => s.layers.end - s.layers.start)).toEqual([2, 2]);
  });

  it('tests memory in the base case: a fast first device that holds only 1 layer never takes more', () => {
    const probe: PlanProblem = { model, devices: [device('a', 1e15)], tokens: 8 };
    const p: PlanProblem = {
      model,
      devices: [device('fast-small', layerMem(probe, 1), 1e15), device('slow-big', 1e15, 1e9)],
      tokens: 8,
    };
    const plan = planOptimal(p);
    for (const s of plan.stages) if (s.device === 0) expect(s.layers.end - s.layers.start).toBeLessThanOrEqual(1);
    expect(plan.memoryOk).toBe(true);
  });

  it('throws plan-infeasible with a message giving the figures', () => {
    const p: PlanProblem = { model, devices: [device('a', 10), device('b', 10)], tokens: 8 };
    try {
      planOptimal(p);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TandemError);
      expect((err as TandemError).code).toBe('plan-infeasible');
      expect((err as TandemError).message).toMatch(/GiB/);
    }
  });

  it('handles fewer layers than devices and a single device', () => {
    const few = { ...model, num_hidden_layers: 2 };
    const p: PlanProblem = {
      model: few,
      devices: [device('a', 1e15), device('b', 1e15), device('c', 1e15)],
      tokens: 8,
    };
    const ct = buildCostTable(p);
    expect(close(solveExactDp(ct)!.latency, bruteForce(ct).best!.latency)).toBe(true);
    const one = planOptimal({ model, devices: [device('a', 1e15)], tokens: 8 });
    expect(one.stages).toHaveLength(1);
    expect(one.stages[0].layers).toEqual({ start: 0, end: 4 });
  });
});

import { describe, expect, it } from 'vitest';
import { bruteForce } from './brute-force.ts';
import { layerCost } from './cost-model.ts';
import { solveExactDp } from './dp.ts';
import { referenceDpLatency } from './dp-reference.ts';
import { createOrderDpContext, orderDpLatency, orderDpPlan } from './order-dp.ts';
import { planOptimal } from './plan.ts';
import { presetScenario } from './presets.ts';
import { randomProblems } from './random-problems.ts';
import { orderedSubsets } from './brute-force.ts';
import { solveScalable } from './scalable.ts';
import { scenarioProblem } from './scenario.ts';
import { strongestFirst } from './baselines.ts';
import { buildCostTable, stageMemory } from './stage-costs.ts';
import { checkPlanShape, evaluatePlan } from './timing.ts';
import type { PlanProblem } from './types.ts';
import { ROUND_A, ROUND_MODEL, ROUND_P, ROUND_W, roundDevice } from './round-cost-fixture.ts';

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

const model = ROUND_MODEL;
const P = ROUND_P,
  W = ROUND_W,
  A = ROUND_A;
const dev = roundDevice;

describe('browser terms in the timing model', () => {
  // d0: read 1 s/layer, session creation 0.5 s/layer + 0.25 s fixed, warm-up 1 s, link latency 0.125 s.
  // d1: read 2 s/layer, warm-up 0.5 s, link latency 0.375 s.
  const d0 = dev('d0', 1, 0.5, 8 * A, 8 * A, {
    sessionCreateBytesPerSec: P / 0.5,
    sessionCreateFixedSec: 0.25,
    warmupSec: 1,
    linkLatencySec: 0.125,
  });
  const d1 = dev('d1', 2, 1, 4 * A, 16 * A, { warmupSec: 0.5, linkLatencySec: 0.375 });
  const plan = [
    { device: 0, layers: { start: 0, end: 2 } },
    { device: 1, layers: { start: 2, end: 4 } },
  ];
  const base: PlanProblem = { model, devices: [d0, d1], tokens: 8 };

  it('the test model has the stated round costs', () => {
    const c = layerCost(model, 8);
    expect([c.paramBytes, c.flops, c.activationBytes]).toEqual([P, W, A]);
  });

  it("load = warm-up + fixed creation + bytes (1/read + 1/create); a hop adds both links' latency", () => {
    const [s1, s2] = evaluatePlan(base, plan).stages;
    // d0: 1 + 0.25 + 2 x (1 + 0.5) = 4.25 s load, 1 s compute.
    expect(s1).toMatchObject({ load: 4.25, wait: 0, comm: 0, compute: 1, startTime: 4.25, finishTime: 5.25 });
    // d1: 0.5 + 2 x 2 = 4.5 s load; hop 0.125 + 0.375 + 8A / min(8A, 16A) = 1.5 s; waits 0.75 s for d0.
    expect(s2).toMatchObject({ load: 4.5, wait: 0.75, comm: 1.5, compute: 2, startTime: 5.25, finishTime: 8.75 });
  });

  it('with the embedding and head: the embedding is read but not created, the head is both', () => {
    const tl = evaluatePlan({ ...base, embeddingAndHead: true }, plan);
    const ct = buildCostTable({ ...base, embeddingAndHead: true });
    const E = ct.embed!.paramBytes;
    const H = ct.head!.paramBytes;
    // d0 (read P per s, create P / 0.5 per s): 1 + 0.25 + 2 x 1.5 + E / P (read only)
    expect(close(tl.stages[0].load, 4.25 + E / P)).toBe(true);
    // d1 has no creation rate: its head costs its read, 2 s per P
    expect(close(tl.stages[1].load, 4.5 + (2 * H) / P)).toBe(true);
    // with a creation rate on d1 too, the head is created as a layer is
    const created = evaluatePlan(
      { ...base, devices: [d0, { ...d1, sessionCreateBytesPerSec: P / 0.5 }], embeddingAndHead: true },
      plan,
    );
    expect(close(created.stages[1].load, 4.5 + 2 * 0.5 + (2 * H + 0.5 * H) / P)).toBe(true);
  });

  it('a measured latency matrix replaces the per-device sum', () => {
    const tl = evaluatePlan(
      {
        ...base,
        hopLatencySec: [
          [0, 2],
          [3, 0],
        ],
      },
      plan,
    );
    expect(tl.stages[1].comm).toBe(3); // 2 s latency + 1 s transfer
    expect(tl.latency).toBe(10.25);
  });

  it('a unit the device does not hold costs a download (its own rate, else downlink / 8)', () => {
    const held = [{ layers: [0, 1] }, { layers: [2] }]; // d1 lacks layer 3
    const own = evaluatePlan({ ...base, devices: [d0, { ...d1, downloadBytesPerSec: P / 4 }], heldUnits: held }, plan);
    expect(own.stages[1].load).toBe(8.5); // 4.5 + 4 s download
    expect(own.latency).toBe(12); // start 8.5 + comm 1.5 + compute 2
    const viaLink = evaluatePlan({ ...base, heldUnits: held }, plan);
    expect(viaLink.stages[1].load).toBe(4.5 + P / ((16 * A) / 8)); // downlink 16A bit/s = 2048 bytes/s
    expect(viaLink.stages[0].load).toBe(4.25); // d0 holds both its layers
  });

  it('rejects bad terms naming the field', () => {
    expect(() => evaluatePlan({ ...base, devices: [{ ...d0, warmupSec: -1 }, d1] }, plan)).toThrow(/warmupSec/);
    expect(() => evaluatePlan({ ...base, devices: [{ ...d0, sessionCreateBytesPerSec: 0 }, d1] }, plan)).toThrow(
      /sessionCreateBytesPerSec/,
    );
    expect(() => evaluatePlan({ ...base, hopLatencySec: [[0, 1]] }, plan)).toThrow(
      expect.objectContaining({ code: 'latency-invalid' }),
    );
    expect(() => evaluatePlan({ ...base, heldUnits: [{ layers: [4] }, { layers: [] }] }, plan)).toThrow(
      expect.objectContaining({ code: 'held-units-invalid' }),
    );
  });
});

describe('the paper is the special case with every browser term zero', () => {
  it('csgo-paper: explicit zero terms and "every unit held" give the same latencies and plans', () => {
    const s = presetScenario('csgo-paper');
    for (const t of [256, 8192]) {
      const paper = scenarioProblem(s, t);
      const zero: PlanProblem = {
        ...paper,
        devices: paper.devices.map((d) => ({ ...d, sessionCreateFixedSec: 0, warmupSec: 0, linkLatencySec: 0 })),
        heldUnits: paper.devices.map(() => ({
          layers: Array.from({ length: paper.model.num_hidden_layers }, (_, l) => l),
          embedding: true,
          head: true,
        })),
      };
      const a = planOptimal(paper),
        b = planOptimal(zero);
      expect(b.latency).toBe(a.latency);
      expect(b.stages.map((x) => [x.device, x.layers.start, x.layers.end])).toEqual(
        a.stages.map((x) => [x.device, x.layers.start, x.layers.end]),
      );
    }
  });
});

describe('exact DP stays exact with the browser terms', () => {
  // 240 seeded instances: per-device latencies or a latency matrix, with and without held units,
  // both memory models, tight and loose memory, embedding and head on half of them.
  const problems: PlanProblem[] = [];
  let seed = 300;
  for (const browserTerms of [true, 'matrix'] as const) {
    for (const heldUnits of [false, true]) {
      for (const memoryModel of ['max', 'sum'] as const) {
        problems.push(
          ...randomProblems(
            seed++,
            30,
            { K: [1, 5], L: [1, 9] },
            {
              browserTerms,
              heldUnits,
              memoryModel,
              memory: memoryModel === 'max' ? 'tight' : 'loose',
              embeddingAndHead: heldUnits,
            },
          ),
        );
      }
    }
  }

  it("DP value == brute force == evaluatePlan of the DP's plan on 240 random instances", () => {
    let infeasible = 0,
      latencyMatters = 0;
    for (const p of problems) {
      const ct = buildCostTable(p);
      const bf = bruteForce(ct).best;
      const dp = solveExactDp(ct);
      if (bf === null) {
        infeasible++;
        expect(dp).toBeNull();
        continue;
      }
      expect(dp).not.toBeNull();
      expect(close(dp!.latency, bf.latency), `DP ${dp!.latency} vs brute force ${bf.latency}`).toBe(true);
      expect(() => checkPlanShape(ct.L, ct.K, dp!.stages)).not.toThrow();
      for (const s of dp!.stages)
        expect(stageMemory(ct, s.layers.start, s.layers.end, s.device)).toBeLessThanOrEqual(ct.memory[s.device]);
      const ev = evaluatePlan(p, dp!.stages);
      expect(close(ev.latency, dp!.latency)).toBe(true);
      expect(close(planOptimal(p).latency, bf.latency)).toBe(true);
      // The terms are not negligible: without them the optimum is a different number.
      const bare: PlanProblem = {
        model: p.model,
        devices: p.devices.map((d) => ({
          ...d,
          sessionCreateBytesPerSec: undefined,
          sessionCreateFixedSec: 0,
          warmupSec: 0,
          linkLatencySec: 0,
        })),
        tokens: p.tokens,
        memoryModel: p.memoryModel,
        embeddingAndHead: p.embeddingAndHead,
      };
      const bareDp = solveExactDp(buildCostTable(bare))!;
      if (!close(bareDp.latency, dp!.latency)) latencyMatters++;
    }
    expect(infeasible).toBeGreaterThanOrEqual(3);
    expect(latencyMatters).toBeGreaterThanOrEqual(problems.length - infeasible - 5);
  });

  it('matches the textbook DP on 16 medium instances (K <= 6, L <= 12)', () => {
    const medium = [
      ...randomProblems(
        401,
        8,
        { K: [5, 6], L: [8, 12] },
        { browserTerms: 'matrix', heldUnits: true, memory: 'tight', embeddingAndHead: true },
      ),
      ...randomProblems(402, 8, { K: [5, 6], L: [8, 12] }, { browserTerms: true, memoryModel: 'sum' }),
    ];
    for (const p of medium) {
      const ct = buildCostTable(p);
      const ref = referenceDpLatency(ct);
      const dp = solveExactDp(ct);
      if (ref === Infinity) expect(dp).toBeNull();
      else expect(close(dp!.latency, ref), `${dp!.latency} vs ${ref}`).toBe(true);
    }
  });

  it('the order DP (with its dominance pruning) over every device order finds the exact optimum', () => {
    for (const p of randomProblems(
      403,
      40,
      { K: [2, 4], L: [2, 8] },
      { browserTerms: 'matrix', heldUnits: true, memory: 'tight' },
    )) {
      const ct = buildCostTable(p);
      const exact = solveExactDp(ct);
      const ctx = createOrderDpContext(ct);
      let best = Infinity;
      for (const order of orderedSubsets(ct.K, ct.K)) {
        const v = orderDpLatency(ctx, order);
        if (v < Infinity) expect(close(evaluatePlan(p, orderDpPlan(ctx, order)!.stages).latency, v)).toBe(true);
        best = Math.min(best, v);
      }
      if (best === Infinity) expect(exact).toBeNull();
      else expect(close(best, exact!.latency), `${best} vs ${exact!.latency}`).toBe(true);
      const sc = solveScalable(ct, strongestFirst(p));
      if (exact) expect(sc!.latency).toBeGreaterThanOrEqual(exact.latency * (1 - 1e-9));
    }
  });
});

describe('regression: seed orders that all miss the only plans that fit', () => {
  it('planOptimal still finds the exact optimum (the embedding and head make the first and last device matter for memory)', () => {
    let missed = 0;
    for (const p of randomProblems(
      302,
      30,
      { K: [1, 5], L: [1, 9] },
      { browserTerms: 'matrix', heldUnits: true, memoryModel: 'max', memory: 'tight', embeddingAndHead: true },
    )) {
      const ct = buildCostTable(p);
      const exact = solveExactDp(ct);
      if (!exact || solveScalable(ct, strongestFirst(p), { maxEvaluations: 0 }) !== null) continue;
      missed++;
      expect(close(planOptimal(p).latency, exact.latency)).toBe(true);
      expect(solveScalable(ct, strongestFirst(p))).not.toBeNull(); // the local search goes on past the seeds
    }
    expect(missed).toBeGreaterThanOrEqual(1);
  });
});

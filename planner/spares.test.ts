import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../core/random.ts';
import { randomHeldProblem, randomPipeline } from './random-problems.ts';
import { planRepair } from './repair.ts';
import { ROUND_MODEL, roundPage } from './round-cost-fixture.ts';
import { planSpares, type SpareInput } from './spares.ts';
import { buildCostTable, stageMemory } from './stage-costs.ts';
import type { HeldUnits, PlanStage } from './types.ts';

/**
 * A seeded spare case: a random problem with browser terms and held units, a random plan over some of
 * its devices (random order and cut points), the other devices idle.
 */
function randomSpareCase(rand: () => number): SpareInput {
  const K = 3 + Math.floor(rand() * 3); // 3..5 devices
  const L = 2 + Math.floor(rand() * 5); // 2..6 layers
  const p = randomHeldProblem(rand, K, L, 300);
  const S = 1 + Math.floor(rand() * Math.min(K - 1, L, 3)); // 1..3 stages, at least one idle device
  const order = [...Array(K).keys()].sort(() => rand() - 0.5);
  const stages = randomPipeline(rand, order, L, S);
  const idle = order.slice(S).sort((a, b) => a - b);
  return {
    model: p.model,
    devices: p.devices,
    held: p.heldUnits!,
    hopLatencySec: p.hopLatencySec,
    memoryModel: p.memoryModel,
    embeddingAndHead: p.embeddingAndHead,
    stages,
    idle,
    tokens: p.tokens,
  };
}

/** Units of a stage, written out independently of the planner. */
function unitsOf(stage: PlanStage, L: number): HeldUnits {
  const layers: number[] = [];
  for (let l = stage.layers.start; l < stage.layers.end; l++) layers.push(l);
  return { layers, embedding: stage.layers.start === 0, head: stage.layers.end === L };
}

const merged = (a: HeldUnits, b?: HeldUnits): HeldUnits =>
  b === undefined
    ? a
    : {
        layers: [...new Set([...a.layers, ...b.layers])],
        embedding: a.embedding === true || b.embedding === true,
        head: a.head === true || b.head === true,
      };

/** Predicted resume after losing each stage, when idle device idle[i] holds stage assignment[i]'s units too. */
function lossTimes(input: SpareInput, assignment: readonly (number | null)[]): number[] {
  const L = input.model.num_hidden_layers;
  return input.stages.map((lostStage) => {
    const remaining = input.devices.map((_, k) => k).filter((k) => k !== lostStage.device);
    const held = remaining.map((k) => {
      const own = input.stages.find((st) => st.device === k);
      const i = input.idle.indexOf(k);
      const spare = i >= 0 && assignment[i] !== null ? input.stages[assignment[i]] : undefined;
      return merged(merged(input.held[k], own && unitsOf(own, L)), spare && unitsOf(spare, L));
    });
    try {
      return planRepair({
        model: input.model,
        devices: remaining.map((k) => input.devices[k]),
        held,
        hopLatencySec: input.hopLatencySec && remaining.map((a) => remaining.map((b) => input.hopLatencySec![a][b])),
        memoryModel: input.memoryModel,
        embeddingAndHead: input.embeddingAndHead,
        survivors: input.stages
          .filter((st) => st !== lostStage)
          .map((st) => ({ device: remaining.indexOf(st.device), layers: st.layers })),
        replayTokens: input.tokens,
      }).resumeSec;
    } catch (err) {
      expect(['repair-infeasible', 'plan-infeasible']).toContain((err as { code?: unknown }).code);
      return Infinity;
    }
  });
}

/** a < b by more than rounding. */
const less = (a: number, b: number) => a !== b && (b === Infinity || a < b - 1e-9 * Math.max(1, Math.abs(b)));

/** Leximax key order of two time vectors: -1 a better, 1 worse, 0 tie. */
function leximax(a: number[], b: number[]): number {
  const x = [...a].sort((p, q) => q - p),
    y = [...b].sort((p, q) => q - p);
  for (let i = 0; i < x.length; i++) {
    if (less(x[i], y[i])) return -1;
    if (less(y[i], x[i])) return 1;
  }
  return 0;
}

/** Every assignment of idle devices to stages (or none; a stage at most once) that fits in memory, best by the documented order. */
function bruteForceSpares(input: SpareInput) {
  const S = input.stages.length;
  const ct = buildCostTable({ ...input, heldUnits: undefined });
  const fits = (d: number, s: number) =>
    stageMemory(ct, input.stages[s].layers.start, input.stages[s].layers.end, d) <= input.devices[d].memoryBytes;
  // none sorts after every stage in the roster-order tie-break
  const rank = (c: number | null) => (c === null ? S : c);
  let best: { assignment: (number | null)[]; times: number[] } | null = null;
  let count = 0;
  const walk = (prefix: (number | null)[]) => {
    if (prefix.length === input.idle.length) {
      count++;
      const times = lossTimes(input, prefix);
      if (best === null) {
        best = { assignment: [...prefix], times };
        return;
      }
      const byTime = leximax(times, best.times);
      const spares = (a: (number | null)[]) => a.filter((c) => c !== null).length;
      const byCount = spares(prefix) - spares(best.assignment);
      const i = prefix.findIndex((c, j) => c !== best!.assignment[j]);
      const byOrder = i < 0 ? 0 : rank(prefix[i]) - rank(best.assignment[i]);
      if (byTime < 0 || (byTime === 0 && (byCount < 0 || (byCount === 0 && byOrder < 0))))
        best = { assignment: [...prefix], times };
      return;
    }
    const d = input.idle[prefix.length];
    // at most one spare per stage
    for (let s = 0; s < S; s++) if (fits(d, s) && !prefix.includes(s)) walk([...prefix, s]);
    walk([...prefix, null]);
  };
  walk([]);
  return { best: best!, count };
}

describe('spare planner vs brute force over every assignment of idle devices to stages', () => {
  const rand = mulberry32(4242);
  const cases = Array.from({ length: 60 }, () => randomSpareCase(rand));

  it('the chosen assignment and its loss times equal an exhaustive search on 60 seeded sessions', () => {
    let withSpares = 0,
      improved = 0;
    for (const input of cases) {
      const plan = planSpares(input);
      const bf = bruteForceSpares(input);
      expect(plan.exact).toBe(true);
      expect(plan.assignment, JSON.stringify({ plan: plan.lossSec, bf: bf.best.times })).toEqual(bf.best.assignment);
      expect(leximax(plan.lossSec, bf.best.times)).toBe(0);
      expect(
        leximax(
          plan.baselineSec,
          lossTimes(
            input,
            input.idle.map(() => null),
          ),
        ),
      ).toBe(0);
      // the spares listed are the assignment's, with their stages' layers
      expect(plan.spares).toEqual(
        plan.assignment.flatMap((s, i) =>
          s === null ? [] : [{ device: input.idle[i], stage: s, layers: input.stages[s].layers }],
        ),
      );
      if (plan.spares.length > 0) withSpares++;
      if (leximax(plan.lossSec, plan.baselineSec) < 0) improved++;
    }
    expect(withSpares).toBeGreaterThanOrEqual(30);
    expect(improved).toBeGreaterThanOrEqual(30);
  });

  it('a spare never makes a loss slower, and every chosen spare makes some loss faster (a useless one is not chosen)', () => {
    for (const input of cases.slice(0, 30)) {
      const plan = planSpares(input);
      plan.lossSec.forEach((t, s) => expect(t).toBeLessThanOrEqual(plan.baselineSec[s] * (1 + 1e-9)));
      for (let i = 0; i < plan.assignment.length; i++) {
        if (plan.assignment[i] === null) continue;
        const without = plan.assignment.map((c, j) => (j === i ? null : c));
        expect(leximax(lossTimes(input, without), plan.lossSec)).toBe(1);
      }
    }
  });

  it('a small budget stops the search early: a valid assignment no worse than none, flagged not exact', () => {
    const input = cases.find((c) => c.idle.length >= 2 && c.stages.length >= 2)!;
    const plan = planSpares({ ...input, maxRepairs: 1 });
    expect(plan.exact).toBe(false);
    expect(plan.assignment).toHaveLength(input.idle.length);
    expect(leximax(plan.lossSec, plan.baselineSec)).toBeLessThanOrEqual(0);
  });
});

describe('spare planner: the costliest stage, the download saved, memory and errors', () => {
  // Pages with round per-layer costs at t = 8 (round-cost-fixture.ts): a layer downloads in 2 s.
  const dev = roundPage;
  // Two stages: layer 0 on device 0, layers 1-3 on device 1 (three layers: its loss costs most downloads).
  const base: SpareInput = {
    model: ROUND_MODEL,
    tokens: 8,
    devices: [dev('a'), dev('b'), dev('idle')],
    held: [{ layers: [] }, { layers: [] }, { layers: [] }],
    stages: [
      { device: 0, layers: { start: 0, end: 1 } },
      { device: 1, layers: { start: 1, end: 4 } },
    ],
    idle: [2],
  };

  it('one idle device copies the stage whose loss costs most; its loss then skips the download', () => {
    const plan = planSpares(base);
    expect(plan.baselineSec[1]).toBeGreaterThan(plan.baselineSec[0]);
    expect(plan.spares).toEqual([{ device: 2, stage: 1, layers: { start: 1, end: 4 } }]);
    // With the spare: it reads its 3 layers (0.75 s, behind the upstream survivor's 0.5 s of replay) and
    // computes them (1.5 s): 2.25 s plus two tiny hops. Without it some page downloads at least one layer (2 s).
    expect(plan.lossSec[1]).toBeCloseTo(2.25, 3);
    expect(plan.baselineSec[1]).toBeGreaterThanOrEqual(plan.lossSec[1] + 2);
    expect(plan.lossSec[0]).toBe(plan.baselineSec[0]);
    // The repair of that loss, as the failover would plan it once the spare reports its units, is the same.
    const repaired = planRepair({
      model: ROUND_MODEL,
      devices: [dev('a'), dev('idle')],
      held: [
        { layers: [0], embedding: true, head: false },
        { layers: [1, 2, 3], embedding: false, head: true },
      ],
      survivors: [{ device: 0, layers: { start: 0, end: 1 } }],
      replayTokens: 8,
    });
    expect(repaired.stages.at(-1)).toEqual({ device: 1, layers: { start: 1, end: 4 } });
    expect(repaired.resumeSec).toBe(plan.lossSec[1]);
  });

  it('two idle devices cover both stages; ties go to the earlier device in roster order', () => {
    const two = {
      ...base,
      devices: [...base.devices, dev('idle2')],
      held: [...base.held, { layers: [] }],
      idle: [2, 3],
    };
    const plan = planSpares(two);
    expect(plan.spares.map((s) => [s.device, s.stage])).toEqual([
      [2, 0],
      [3, 1],
    ]);
    // Device 3 already holds stage 1's layers (an older plan), so it counts as stage 1's warm copy: it copies
    // stage 0, and device 2 copies stage 1 (a loss of stage 1 can then split its read over two warm pages).
    const holding = { ...two, held: [{ layers: [] }, { layers: [] }, { layers: [] }, { layers: [1, 2, 3] }] };
    expect(planSpares(holding).assignment).toEqual([1, 0]);
  });

  it('memory: a device too small for the costliest stage copies one that fits, or none', () => {
    const ct = buildCostTable({ model: ROUND_MODEL, devices: [dev('x')], tokens: 8 });
    const oneLayer = stageMemory(ct, 0, 1, null);
    const small = { ...base, devices: [dev('a'), dev('b'), dev('idle', oneLayer)] };
    expect(planSpares(small).spares).toEqual([{ device: 2, stage: 0, layers: { start: 0, end: 1 } }]);
    const tiny = { ...base, devices: [dev('a'), dev('b'), dev('idle', oneLayer / 2)] };
    const none = planSpares(tiny);
    expect(none.spares).toEqual([]);
    expect(none.lossSec).toEqual(none.baselineSec);
  });

  it('rejects idle devices that are stages of the plan, out of range, or repeated', () => {
    expect(() => planSpares({ ...base, idle: [1] })).toThrow(expect.objectContaining({ code: 'spares-invalid' }));
    expect(() => planSpares({ ...base, idle: [5] })).toThrow(expect.objectContaining({ code: 'spares-invalid' }));
    expect(() => planSpares({ ...base, idle: [2, 2] })).toThrow(expect.objectContaining({ code: 'spares-invalid' }));
    expect(planSpares({ ...base, idle: [] })).toMatchObject({ spares: [], exact: true });
  });
});

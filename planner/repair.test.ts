import { describe, expect, it } from 'vitest';
import { bruteForce, compositions, orderedSubsets } from './brute-force.ts';
import { ROUND_MODEL, roundPage } from './round-cost-fixture.ts';
import { mulberry32 } from '../core/random.ts';
import { randomHeldProblem, randomPipeline, randomProblem } from './random-problems.ts';
import { lostRange, planRepair, type RepairInput } from './repair.ts';
import { buildCostTable, stageMemory } from './stage-costs.ts';
import { evaluateWithCosts } from './timing.ts';
import type { PlanProblem, PlanStage } from './types.ts';

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

/**
 * A seeded repair case: a random problem with the browser terms and held units, a random running
 * pipeline over some of its devices, one stage (or two) lost. The remaining devices are renumbered.
 */
function randomRepairCase(rand: () => number): RepairInput {
  const K = 4 + Math.floor(rand() * 3); // 4..6 devices before the loss, some idle
  const L = 3 + Math.floor(rand() * 6); // 3..8 layers
  const p = randomHeldProblem(rand, K, L, 500);
  // The running pipeline: n stages over a random order of devices, random cut points.
  const n = 2 + Math.floor(rand() * Math.min(K - 2, L - 1));
  const order = [...Array(K).keys()].sort(() => rand() - 0.5).slice(0, n);
  const pipeline = randomPipeline(rand, order, L, n);
  // Lose one stage, sometimes two.
  const lostCount = rand() < 0.25 && n >= 3 ? 2 : 1;
  const lostStages = new Set([...Array(n).keys()].sort(() => rand() - 0.5).slice(0, lostCount));
  const lostDevices = new Set([...lostStages].map((s) => pipeline[s].device));
  const remaining = [...Array(K).keys()].filter((k) => !lostDevices.has(k));
  const renumber = new Map(remaining.map((k, i) => [k, i]));
  const survivors = pipeline
    .filter((_, s) => !lostStages.has(s))
    .map((s) => ({ device: renumber.get(s.device)!, layers: s.layers }));
  return {
    model: p.model,
    devices: remaining.map((k) => p.devices[k]),
    held: remaining.map((k) => p.heldUnits![k]),
    hopLatencySec: p.hopLatencySec ? remaining.map((a) => remaining.map((b) => p.hopLatencySec![a][b])) : undefined,
    memoryModel: p.memoryModel,
    embeddingAndHead: p.embeddingAndHead,
    survivors,
    replayTokens: p.tokens,
  };
}

/** The replay problem as the test sees it: held units at n tokens; survivors' runtimes are warm. */
function replayProblem(input: RepairInput): PlanProblem {
  const warm = new Set(input.survivors.map((s) => s.device));
  return {
    model: input.model,
    tokens: input.replayTokens,
    memoryModel: input.memoryModel,
    embeddingAndHead: input.embeddingAndHead,
    hopLatencySec: input.hopLatencySec,
    heldUnits: input.held,
    devices: input.devices.map((d, k) => (warm.has(k) ? { ...d, warmupSec: 0 } : d)),
  };
}

/**
 * Independent brute force of the range repair: every ordered set of free devices and every split of
 * the lost range, between the fixed survivors, evaluated as one pipeline whose survivors load nothing.
 */
function bruteForceRange(input: RepairInput): number {
  const L = input.model.num_hidden_layers;
  const lost = lostRange(L, input.survivors, input.lost);
  const up = input.survivors.filter((s) => s.layers.end <= lost.start).sort((a, b) => a.layers.start - b.layers.start);
  const down = input.survivors
    .filter((s) => s.layers.start >= lost.end)
    .sort((a, b) => a.layers.start - b.layers.start);
  const busy = new Set([...up, ...down].map((s) => s.device));
  const free = input.devices.map((_, k) => k).filter((k) => !busy.has(k));
  const ct = buildCostTable(replayProblem(input));
  const span = lost.end - lost.start;
  let best = Infinity;
  for (let m = 1; m <= Math.min(free.length, span); m++) {
    for (const pick of orderedSubsets(free.length, m)) {
      for (const sizes of compositions(span, m)) {
        const middle: PlanStage[] = [];
        let start = lost.start;
        sizes.forEach((size, k) => {
          middle.push({ device: free[pick[k]], layers: { start, end: start + size } });
          start += size;
        });
        if (middle.some((s) => stageMemory(ct, s.layers.start, s.layers.end, s.device) > ct.memory[s.device])) continue;
        best = Math.min(best, evaluateWithCosts(ct, [...up, ...middle, ...down], busy).latency);
      }
    }
  }
  return best;
}

describe('repair planner vs brute force (per-device, per-layer load costs from held units)', () => {
  const rand = mulberry32(1313);
  const cases = Array.from({ length: 150 }, () => randomRepairCase(rand));

  it('range repair: the DP value equals an independent brute force on 150 seeded losses', () => {
    let feasible = 0,
      twoGaps = 0;
    for (const input of cases) {
      const bf = bruteForceRange(input);
      const uncovered = new Set<number>();
      for (let l = 0; l < input.model.num_hidden_layers; l++)
        if (!input.survivors.some((s) => s.layers.start <= l && l < s.layers.end)) uncovered.add(l);
      const hull = lostRange(input.model.num_hidden_layers, input.survivors);
      if (uncovered.size < hull.end - hull.start) twoGaps++;
      let plan;
      try {
        plan = planRepair({ ...input, mode: 'range' });
      } catch (err) {
        expect(err).toMatchObject({ code: 'repair-infeasible' });
        expect(bf).toBe(Infinity);
        continue;
      }
      feasible++;
      expect(close(plan.resumeSec, bf), `repair ${plan.resumeSec} vs brute force ${bf}`).toBe(true);
      // The plan is one valid pipeline whose evaluation (survivors live) gives the same time.
      const live = new Set(
        input.survivors
          .filter((s) => s.layers.end <= plan.replanned.start || s.layers.start >= plan.replanned.end)
          .map((s) => s.device),
      );
      const ev = evaluateWithCosts(buildCostTable(replayProblem(input)), plan.stages, live);
      expect(close(ev.latency, plan.resumeSec)).toBe(true);
      expect(
        close(plan.timeline.latency, plan.resumeSec),
        `evaluated ${plan.timeline.latency} vs DP ${plan.resumeSec}`,
      ).toBe(true);
    }
    expect(feasible).toBeGreaterThanOrEqual(70); // the rest: no free page, or none that fits (brute force agrees)
    expect(twoGaps).toBeGreaterThanOrEqual(3);
  });

  it('whole re-plan equals brute force over all remaining devices; auto takes the faster, range on a tie', () => {
    let chosenWhole = 0,
      chosenRange = 0;
    for (const input of cases.slice(0, 60)) {
      const bf = bruteForce(buildCostTable(replayProblem(input))).best;
      let whole;
      try {
        whole = planRepair({ ...input, mode: 'whole' });
      } catch (err) {
        expect(err).toMatchObject({ code: 'repair-infeasible' });
        expect(bf).toBeNull();
        continue;
      }
      expect(close(whole.resumeSec, bf!.latency)).toBe(true);
      const auto = planRepair(input);
      const range = auto.candidates.range;
      expect(auto.candidates.whole).toBe(whole.resumeSec);
      expect(auto.resumeSec).toBe(Math.min(range ?? Infinity, whole.resumeSec));
      if (range !== null && range <= whole.resumeSec) expect(auto.mode).toBe('range');
      if (auto.mode === 'whole') chosenWhole++;
      else chosenRange++;
    }
    expect(chosenWhole).toBeGreaterThanOrEqual(1);
    expect(chosenRange).toBeGreaterThanOrEqual(1);
  });
});

describe('repair planner: chosen pages and errors', () => {
  // Round per-layer costs at t = 8 (round-cost-fixture.ts).
  const model = ROUND_MODEL;
  const dev = roundPage;
  // Three pages: 0 and 1 survive with layers 0-1 and 3; layer 2 was on the lost page. 2 and 3 are idle.
  const base: RepairInput = {
    model,
    replayTokens: 8,
    devices: [dev('up'), dev('down'), dev('idle-empty'), dev('idle-spare')],
    held: [{ layers: [0, 1] }, { layers: [3] }, { layers: [] }, { layers: [2] }],
    survivors: [
      { device: 0, layers: { start: 0, end: 2 } },
      { device: 1, layers: { start: 3, end: 4 } },
    ],
  };

  it('puts the lost layer on the idle page that holds it (no download) and keeps the survivors', () => {
    const plan = planRepair(base);
    expect(plan.mode).toBe('range');
    expect(plan.replanned).toEqual({ start: 2, end: 3 });
    expect(plan.stages).toEqual([
      { device: 0, layers: { start: 0, end: 2 } },
      { device: 3, layers: { start: 2, end: 3 } },
      { device: 1, layers: { start: 3, end: 4 } },
    ]);
    // The spare's load (0.25 s read) hides behind the upstream compute (1 s): resume = 1 + 0.5 + 0.5 s of
    // compute plus two hops; the page without the layer would add a 2 s download.
    const without = planRepair({
      ...base,
      held: [{ layers: [0, 1] }, { layers: [3] }, { layers: [] }, { layers: [] }],
    });
    expect(without.resumeSec).toBeGreaterThan(plan.resumeSec + 1);
  });

  it('fails with repair-infeasible saying what page would make it recoverable', () => {
    const small = {
      ...base,
      devices: [dev('up'), dev('down'), dev('idle-a', 1000), dev('idle-b', 1000)],
      mode: 'range' as const,
    };
    expect(() => planRepair(small)).toThrow(expect.objectContaining({ code: 'repair-infeasible' }));
    expect(() => planRepair(small)).toThrow(/add a device with [0-9.]+ GiB free/);
    // Without the restriction to 'range', the survivors can take everything in a whole re-plan.
    expect(planRepair({ ...small, mode: 'auto' }).mode).toBe('whole');
  });

  it('lost range: the hull of the uncovered layers; an explicit range releases the survivors inside it', () => {
    expect(
      lostRange(6, [
        { device: 0, layers: { start: 0, end: 1 } },
        { device: 1, layers: { start: 3, end: 4 } },
      ]),
    ).toEqual({ start: 1, end: 6 });
    const plan = planRepair({ ...base, lost: { start: 2, end: 4 }, survivors: [base.survivors[0]] });
    expect(plan.replanned).toEqual({ start: 2, end: 4 });
    expect(() =>
      planRepair({
        ...base,
        survivors: [{ device: 0, layers: { start: 0, end: 1 } }, base.survivors[1]],
        lost: { start: 2, end: 3 },
      }),
    ).toThrow(expect.objectContaining({ code: 'repair-invalid' }));
    expect(() => planRepair({ ...base, replayTokens: 0 })).toThrow(expect.objectContaining({ code: 'repair-invalid' }));
  });

  it("many idle pages (beyond the exact DP's state limit): a valid plan no slower than any single page taking the range", () => {
    const rand = mulberry32(77);
    const p = randomProblem(rand, { K: 24, L: 40, browserTerms: true, heldUnits: true });
    const survivors: PlanStage[] = [
      { device: 0, layers: { start: 0, end: 10 } },
      { device: 1, layers: { start: 30, end: 40 } },
    ];
    const input: RepairInput = {
      model: p.model,
      devices: p.devices,
      held: p.heldUnits!,
      survivors,
      replayTokens: p.tokens,
      memoryModel: p.memoryModel,
    };
    const plan = planRepair({ ...input, mode: 'range' });
    expect(plan.stages[0]).toEqual(survivors[0]);
    expect(plan.stages.at(-1)).toEqual(survivors[1]);
    const ct = buildCostTable(replayProblem(input));
    const live = new Set([0, 1]);
    expect(close(evaluateWithCosts(ct, plan.stages, live).latency, plan.resumeSec)).toBe(true);
    for (let d = 2; d < 24; d++) {
      const single = evaluateWithCosts(
        ct,
        [survivors[0], { device: d, layers: { start: 10, end: 30 } }, survivors[1]],
        live,
      ).latency;
      expect(plan.resumeSec).toBeLessThanOrEqual(single * (1 + 1e-9));
    }
  });
});

/**
 * Spares: which stage of the adopted plan each idle device should keep a warm copy of (its units in the
 * device's store, no session), so that losing a stage costs as little as possible. A loss is repaired by
 * planRepair (repair.ts, 'auto'); a unit a device holds costs no download there, so a spare holding the
 * lost stage's units can take over without fetching them.
 *
 * Objective, over the single-stage losses s = 0..S-1, each predicted by planRepair at `tokens` tokens of
 * history (a loss early in the request):
 *   1. the worst predicted resume time, then the second worst, ... (leximax of the sorted times);
 *   2. fewer spares (a spare that makes no loss cheaper costs a download for nothing);
 *   3. roster order: the assignment vector (per idle device: its stage, or none after every stage)
 *      lexicographically smallest, so earlier devices and earlier stages win ties.
 * A stage gets at most one spare: a second warm copy would only split the stage's read over two pages
 * after a loss, for a second whole download, and it multiplies the search.
 * Exact: depth-first branch and bound over the idle devices in roster order. A partial assignment's
 * bound lets every undecided device hold every stage it could take: holding more units never makes a
 * repair slower (planRepair is exact, its loads only shrink), so no completion can beat that bound.
 * A budget of repair evaluations caps the search; past it the best assignment found so far is returned
 * with `exact: false`. Memory: a device takes a stage only if the stage fits in its memory (the
 * planner's memory model at `tokens`), since it must run the stage after a loss. Pure: no I/O.
 */
import { TandemError } from '../core/errors.ts';
import { planRepair } from './repair.ts';
import { buildCostTable, stageMemory } from './stage-costs.ts';
import type { HeldUnits, LayerRange, PlanProblem, PlanStage } from './types.ts';

export interface SpareInput extends Omit<PlanProblem, 'heldUnits' | 'tokens'> {
  /** Every device of the session: the plan's and the idle ones, in roster order. */
  devices: PlanProblem['devices'];
  /** Per device (same order), the units it holds in its store now. */
  held: readonly HeldUnits[];
  /** The adopted plan, in pipeline order (device indices into `devices`). */
  stages: readonly PlanStage[];
  /** Devices that may become spares (in the session, profiled, not in the plan), in roster order. */
  idle: readonly number[];
  /** Tokens of history a loss is evaluated at (the plan's prompt length: a loss early in the request). */
  tokens: number;
  /** Most planRepair calls the search may make (default 600); past it the result is not proven optimal. */
  maxRepairs?: number;
}

export interface SpareChoice {
  /** The idle device (index into the input's devices). */
  device: number;
  /** The stage it copies (index into the input's stages) and that stage's layers. */
  stage: number;
  layers: LayerRange;
}

export interface SparePlan {
  /** The chosen spares, in roster order of their devices. */
  spares: SpareChoice[];
  /** Per idle device (the input's `idle` order): the stage it copies, or null. */
  assignment: (number | null)[];
  /** Per stage: predicted seconds from its loss to the next token with these spares (Infinity: not recoverable). */
  lossSec: number[];
  /** The same without any spare. */
  baselineSec: number[];
  /** True when the search finished within its budget (the assignment is optimal). */
  exact: boolean;
  /** planRepair calls made (memoised ones counted once). */
  repairs: number;
}

/** Relative tolerance under which two predicted times count as equal. */
const TIE = 1e-9;

/** -1 when a is better than b (smaller leximax of the sorted-descending times), 1 when worse, 0 on a tie. */
export function compareLossTimes(a: readonly number[], b: readonly number[]): number {
  const x = [...a].sort((p, q) => q - p);
  const y = [...b].sort((p, q) => q - p);
  for (let i = 0; i < x.length; i++) {
    if (x[i] === y[i]) continue;
    if (x[i] === Infinity) return 1;
    if (y[i] === Infinity) return -1;
    const tol = TIE * Math.max(1, Math.abs(y[i]));
    if (x[i] < y[i] - tol) return -1;
    if (x[i] > y[i] + tol) return 1;
  }
  return 0;
}

/** Units of stage `s` of `stages`: its layers, the embedding if first, the head if last. */
function stageUnits(stages: readonly PlanStage[], s: number, L: number): HeldUnits {
  const { start, end } = stages[s].layers;
  return {
    layers: Array.from({ length: end - start }, (_, i) => start + i),
    embedding: start === 0,
    head: end === L,
  };
}

function union(a: HeldUnits, b: HeldUnits): HeldUnits {
  return {
    layers: [...new Set([...a.layers, ...b.layers])].sort((x, y) => x - y),
    embedding: a.embedding === true || b.embedding === true,
    head: a.head === true || b.head === true,
  };
}

function checkInput(input: SpareInput): void {
  const K = input.devices.length;
  if (input.held.length !== K)
    throw new TandemError(
      'spares-invalid',
      `held has ${input.held.length} entries for ${K} devices: give one per device (empty when it holds nothing)`,
    );
  const planned = new Set(input.stages.map((s) => s.device));
  const seen = new Set<number>();
  for (const d of input.idle) {
    if (!Number.isInteger(d) || d < 0 || d >= K || planned.has(d) || seen.has(d))
      throw new TandemError(
        'spares-invalid',
        `idle device ${d}: idle devices must be indices 0..${K - 1}, each once, and not stages of the plan`,
      );
    seen.add(d);
  }
  if (input.stages.length === 0)
    throw new TandemError('spares-invalid', 'the plan has no stages: plan before choosing spares');
}

/**
 * Chooses the spares (see the file comment). `assignment[i]` for idle device `input.idle[i]`:
 * a stage index, or null.
 */
export function planSpares(input: SpareInput): SparePlan {
  checkInput(input);
  const L = input.model.num_hidden_layers;
  const S = input.stages.length;
  const I = input.idle.length;
  const budget = input.maxRepairs ?? 600;
  const units = input.stages.map((_, s) => stageUnits(input.stages, s, L));
  // After the plan runs, each stage's page holds its stage's units.
  const heldNow = input.held.map((h, k) => {
    const s = input.stages.findIndex((st) => st.device === k);
    return s < 0 ? h : union(h, units[s]);
  });

  // Stages each idle device can hold (memory at `tokens`), in stage order.
  const ct = buildCostTable(problemOf(input));
  const options = input.idle.map((d) =>
    input.stages.flatMap((st, s) => (stageMemory(ct, st.layers.start, st.layers.end, d) <= ct.memory[d] ? [s] : [])),
  );
  const allUnits = options.map((opts) =>
    opts.reduce<HeldUnits>((acc, s) => union(acc, units[s]), { layers: [], embedding: false, head: false }),
  );

  // Predicted resume after losing stage s, when idle device i holds `extra[i]` on top of what it holds.
  // `code[i]`: the stage index, S for none, -1 for "every stage it could take" (the bound).
  const memo = new Map<string, number>();
  let repairs = 0;
  const lossTime = (s: number, code: readonly number[]): number => {
    const key = `${s}|${code.join(',')}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    repairs += 1;
    const lostDevice = input.stages[s].device;
    const remaining = input.devices.map((_, k) => k).filter((k) => k !== lostDevice);
    const renumber = new Map(remaining.map((k, i) => [k, i]));
    const idleIndex = new Map(input.idle.map((d, i) => [d, i]));
    const held = remaining.map((k) => {
      const i = idleIndex.get(k);
      if (i === undefined) return heldNow[k];
      const c = code[i];
      if (c === S) return heldNow[k];
      return union(heldNow[k], c < 0 ? allUnits[i] : units[c]);
    });
    let sec: number;
    try {
      sec = planRepair({
        model: input.model,
        devices: remaining.map((k) => input.devices[k]),
        held,
        survivors: input.stages
          .filter((_, t) => t !== s)
          .map((st) => ({ device: renumber.get(st.device)!, layers: { ...st.layers } })),
        replayTokens: input.tokens,
        mode: 'auto',
        ...(input.memoryModel !== undefined ? { memoryModel: input.memoryModel } : {}),
        ...(input.embeddingAndHead !== undefined ? { embeddingAndHead: input.embeddingAndHead } : {}),
        ...(input.costOptions !== undefined ? { costOptions: input.costOptions } : {}),
        ...(input.hopLatencySec !== undefined
          ? { hopLatencySec: remaining.map((a) => remaining.map((b) => input.hopLatencySec![a][b])) }
          : {}),
      }).resumeSec;
    } catch (err) {
      if (!(err instanceof TandemError && (err.code === 'repair-infeasible' || err.code === 'plan-infeasible')))
        throw err;
      sec = Infinity;
    }
    memo.set(key, sec);
    return sec;
  };
  const losses = (code: readonly number[]) => Array.from({ length: S }, (_, s) => lossTime(s, code));

  const none = new Array<number>(I).fill(S);
  const baselineSec = losses(none);
  const spareCount = (code: readonly number[]) => code.filter((c) => c !== S).length;
  // Full order of complete assignments: leximax, then fewer spares, then the vector (roster order).
  const better = (code: number[], times: number[], than: number[], thanTimes: number[]) => {
    const byTime = compareLossTimes(times, thanTimes);
    if (byTime !== 0) return byTime < 0;
    const byCount = spareCount(code) - spareCount(than);
    if (byCount !== 0) return byCount < 0;
    for (let i = 0; i < I; i++) if (code[i] !== than[i]) return code[i] < than[i];
    return false;
  };

  // A first incumbent, for the bound to prune against: each device in turn takes its best stage (or none).
  let best = none;
  let bestTimes = baselineSec;
  for (let i = 0; i < I && repairs <= budget; i++) {
    for (const c of options[i].filter((t) => !best.includes(t))) {
      const trial = best.map((b, j) => (j === i ? c : b));
      const times = losses(trial);
      if (better(trial, times, best, bestTimes)) {
        best = trial;
        bestTimes = times;
      }
    }
  }
  let exact = true;
  // Depth-first over idle devices in roster order; `code` holds the decided prefix, -1 beyond it.
  const code = new Array<number>(I).fill(-1);
  const search = (i: number): void => {
    if (!exact) return;
    if (i === I) {
      const times = losses(code);
      if (better(code, times, best, bestTimes)) {
        best = [...code];
        bestTimes = times;
      }
      return;
    }
    // The bound: no completion of this prefix is faster than every undecided device holding everything.
    if (i > 0 && compareLossTimes(losses(code), bestTimes) > 0) return;
    for (const c of [...options[i].filter((t) => !code.includes(t)), S]) {
      if (repairs > budget) {
        exact = false;
        return;
      }
      code[i] = c;
      search(i + 1);
      code[i] = -1;
    }
  };
  search(0);

  const spares = best.flatMap((c, i) =>
    c === S ? [] : [{ device: input.idle[i], stage: c, layers: { ...input.stages[c].layers } }],
  );
  return {
    spares,
    assignment: best.map((c) => (c === S ? null : c)),
    lossSec: bestTimes,
    baselineSec,
    exact,
    repairs,
  };
}

function problemOf(input: SpareInput): PlanProblem {
  return {
    model: input.model,
    devices: input.devices,
    tokens: input.tokens,
    ...(input.memoryModel !== undefined ? { memoryModel: input.memoryModel } : {}),
    ...(input.embeddingAndHead !== undefined ? { embeddingAndHead: input.embeddingAndHead } : {}),
    ...(input.costOptions !== undefined ? { costOptions: input.costOptions } : {}),
    ...(input.hopLatencySec !== undefined ? { hopLatencySec: input.hopLatencySec } : {}),
  };
}

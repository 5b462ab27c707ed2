/**
 * Repair planning: a page left while tokens were being generated. The pages that remain rebuild the
 * pipeline and replay the request's history (prompt + tokens generated so far, n tokens) as one
 * prefill; the next token comes out when that replay reaches the last stage. Two ways to repair:
 *
 * - 'range': the surviving stages keep their layers and live sessions (load 0); only the lost layer
 *   range is planned, over the pages NOT in the pipeline (idle pages and pages holding spare units),
 *   after the fixed upstream survivors and before the fixed downstream ones. Exact DP over that range
 *   (dp.ts with a fixed entry and exit) up to MAX_DP_STATES, the scalable search beyond.
 * - 'whole': a fresh plan of all layers over every remaining page (exact DP / planOptimal). Survivors'
 *   runtimes are warm (no warm-up), but every stage creates its session again.
 *
 * In both, a unit a page holds in its store costs read + session creation only; a unit it lacks adds
 * a download (per-device, per-layer load costs). 'auto' takes the faster; on a tie, 'range' (it keeps
 * the survivors and puts the work on idle / spare pages). Pure: no I/O.
 */
import { dpStateCount, MAX_DP_STATES, solveExactDp } from './dp.ts';
import { TandemError } from '../core/errors.ts';
import { planOptimal } from './plan.ts';
import { solveScalable } from './scalable.ts';
import { buildCostTable, commTime, sliceCostTable, stageCompute, stageMemory, type CostTable } from './stage-costs.ts';
import { evaluateWithCosts } from './timing.ts';
import type { DeviceProfile, HeldUnits, LayerRange, PlanProblem, PlanStage, Timeline } from './types.ts';

export type RepairMode = 'range' | 'whole';

export interface RepairInput extends Omit<PlanProblem, 'tokens' | 'heldUnits' | 'devices'> {
  /** The pages that remain (the lost ones are not in the list), idle pages of the roster included. */
  devices: DeviceProfile[];
  /** Per device (same order), the units it holds in its store (IndexedDB). */
  held: readonly HeldUnits[];
  /** The stages whose pages remain, device indices into `devices`; empty when none survives. */
  survivors: readonly PlanStage[];
  /**
   * The layers to re-plan in 'range' mode; default: the smallest range covering every layer no
   * survivor holds. Survivors overlapping it are released (their pages join the free pool).
   */
  lost?: LayerRange;
  /** n: tokens to replay = prompt + tokens generated so far. */
  replayTokens: number;
  /** 'auto' (default): the faster of the two. */
  mode?: RepairMode | 'auto';
}

export interface RepairPlan {
  mode: RepairMode;
  /** The whole pipeline after the repair, in order (device indices into the input's devices). */
  stages: PlanStage[];
  /** Layers that get new stages ('whole': all of them). */
  replanned: LayerRange;
  /** Timeline of the replay from the repair's start (t = 0); surviving stages load nothing in 'range'. */
  timeline: Timeline;
  /** Predicted seconds from the repair's start to the next token: the DP's optimum (= timeline.latency up to rounding). */
  resumeSec: number;
  /** Predicted resume seconds of each mode; null when the mode has no plan that fits. */
  candidates: Record<RepairMode, number | null>;
}

/** The lost range: the given one, or the hull of the layers no survivor holds. */
export function lostRange(L: number, survivors: readonly PlanStage[], lost?: LayerRange): LayerRange {
  if (lost !== undefined) {
    if (
      !Number.isInteger(lost.start) ||
      !Number.isInteger(lost.end) ||
      lost.start < 0 ||
      lost.end > L ||
      lost.end <= lost.start
    ) {
      throw new TandemError(
        'repair-invalid',
        `lost range ${lost.start}..${lost.end - 1} (0-based) must be non-empty and inside 0..${L - 1}`,
      );
    }
    return { start: lost.start, end: lost.end };
  }
  const covered = new Array<boolean>(L).fill(false);
  for (const s of survivors) for (let l = s.layers.start; l < s.layers.end; l++) covered[l] = true;
  const first = covered.indexOf(false);
  if (first < 0)
    throw new TandemError(
      'repair-invalid',
      'every layer is held by a surviving stage: nothing to repair (give `lost` to re-plan a range anyway)',
    );
  return { start: first, end: covered.lastIndexOf(false) + 1 };
}

/** Survivors before and after the lost range, checked to tile 0..start and end..L. */
function splitSurvivors(L: number, survivors: readonly PlanStage[], lost: LayerRange, K: number) {
  const up = survivors.filter((s) => s.layers.end <= lost.start).sort((a, b) => a.layers.start - b.layers.start);
  const down = survivors.filter((s) => s.layers.start >= lost.end).sort((a, b) => a.layers.start - b.layers.start);
  const tiles = (stages: PlanStage[], from: number, to: number) => {
    let next = from;
    for (const s of stages) {
      if (s.layers.start !== next) return false;
      next = s.layers.end;
    }
    return next === to;
  };
  if (!tiles(up, 0, lost.start) || !tiles(down, lost.end, L)) {
    throw new TandemError(
      'repair-invalid',
      `the surviving stages must cover layers 0..${lost.start - 1} and ${lost.end}..${L - 1} (0-based) exactly, each range once, around the lost range`,
    );
  }
  const used = new Set<number>();
  for (const s of [...up, ...down]) {
    if (!Number.isInteger(s.device) || s.device < 0 || s.device >= K || used.has(s.device)) {
      throw new TandemError(
        'repair-invalid',
        `surviving stage on device ${s.device}: device indices must be 0..${K - 1}, each once`,
      );
    }
    used.add(s.device);
  }
  return { up, down, busy: used };
}

/** The problem at the replay length, with held units; `warm` devices pay no runtime warm-up. */
function repairProblem(input: RepairInput, warm: ReadonlySet<number>): PlanProblem {
  if (!Number.isInteger(input.replayTokens) || input.replayTokens <= 0) {
    throw new TandemError(
      'repair-invalid',
      `replayTokens must be a positive integer (prompt + tokens generated so far), got ${String(input.replayTokens)}`,
    );
  }
  return {
    model: input.model,
    devices: input.devices.map((d, k) => (warm.has(k) ? { ...d, warmupSec: 0 } : d)),
    tokens: input.replayTokens,
    heldUnits: input.held,
    ...(input.memoryModel !== undefined ? { memoryModel: input.memoryModel } : {}),
    ...(input.embeddingAndHead !== undefined ? { embeddingAndHead: input.embeddingAndHead } : {}),
    ...(input.costOptions !== undefined ? { costOptions: input.costOptions } : {}),
    ...(input.hopLatencySec !== undefined ? { hopLatencySec: input.hopLatencySec } : {}),
  };
}

/** Finish time of a chain of live stages (load 0) started at `start` after device `from` (or none). */
function liveChain(ct: CostTable, stages: readonly PlanStage[], start: number, from: number): number {
  let t = start,
    prev = from;
  for (const s of stages) {
    t +=
      (prev < 0 ? 0 : commTime(ct, prev, s.device, s.layers.start)) +
      stageCompute(ct, s.device, s.layers.start, s.layers.end);
    prev = s.device;
  }
  return t;
}

/** The 'range' repair, or null when no free page set can hold the lost range. */
interface RangeRepair {
  stages: PlanStage[];
  dpSec: number; // the DP's value (the timeline's latency up to rounding)
  timeline: Timeline;
  lost: LayerRange;
  needBytes: number; // memory the whole lost range needs on one page
  freeMax: number; // the largest free page's memory
}

function repairRange(input: RepairInput): RangeRepair {
  const L = input.model.num_hidden_layers;
  const lost = lostRange(L, input.survivors, input.lost);
  const { up, down, busy } = splitSurvivors(L, input.survivors, lost, input.devices.length);
  // Every survivor's runtime is warm, also one released from inside the lost range.
  const ct = buildCostTable(repairProblem(input, new Set(input.survivors.map((s) => s.device))));
  const free = input.devices.map((_, k) => k).filter((k) => !busy.has(k));
  const needBytes = stageMemory(ct, lost.start, lost.end, null);
  const freeMax = Math.max(0, ...free.map((k) => ct.memory[k]));
  const none = { stages: [], dpSec: Infinity, timeline: { latency: Infinity, stages: [] }, lost, needBytes, freeMax };
  if (free.length === 0) return none;

  // Fixed upstream: the survivors recompute the replay from their live sessions.
  const last = up.at(-1);
  const entry =
    last === undefined
      ? null
      : {
          finish: liveChain(ct, up, 0, -1),
          comm: Float64Array.from(free, (d) => commTime(ct, last.device, d, lost.start)),
        };
  // Fixed downstream: after the new last stage on d, the hop to the first downstream survivor and the chain.
  const exit = down.length === 0 ? null : Float64Array.from(free, (d) => liveChain(ct, down, 0, d));
  const sub = sliceCostTable(ct, free, lost.start, lost.end, entry, exit);
  // Exact while the state space is small (as planOptimal); beyond, the scalable search over orders.
  const strongestFirst = [...sub.flops.keys()].sort((a, b) => sub.flops[b] - sub.flops[a] || a - b);
  const dp = dpStateCount(sub.K, sub.L) <= MAX_DP_STATES ? solveExactDp(sub) : solveScalable(sub, strongestFirst);
  if (dp === null) return none;

  const middle = dp.stages.map((s) => ({
    device: free[s.device],
    layers: { start: s.layers.start + lost.start, end: s.layers.end + lost.start },
  }));
  const stages = [...up, ...middle, ...down];
  return { stages, dpSec: dp.latency, timeline: evaluateWithCosts(ct, stages, busy), lost, needBytes, freeMax };
}

/** Plans the repair after a page loss; throws TandemError('repair-infeasible') saying what would make it possible. */
export function planRepair(input: RepairInput): RepairPlan {
  const mode = input.mode ?? 'auto';
  const L = input.model.num_hidden_layers;
  const range = mode === 'whole' ? null : repairRange(input);

  let whole: { stages: PlanStage[]; timeline: Timeline } | null = null;
  if (mode !== 'range') {
    const survivorsWarm = new Set(input.survivors.map((s) => s.device));
    const problem = repairProblem(input, survivorsWarm);
    try {
      const plan = planOptimal(problem);
      whole = { stages: plan.stages.map((s) => ({ device: s.device, layers: { ...s.layers } })), timeline: plan };
    } catch (err) {
      if (!(err instanceof TandemError && err.code === 'plan-infeasible')) throw err;
    }
  }

  const rangeSec = range && range.dpSec < Infinity ? range.dpSec : null;
  const wholeSec = whole ? whole.timeline.latency : null;
  const candidates = { range: rangeSec, whole: wholeSec };
  if (rangeSec !== null && (wholeSec === null || rangeSec <= wholeSec)) {
    return {
      mode: 'range',
      stages: range!.stages,
      replanned: range!.lost,
      timeline: range!.timeline,
      resumeSec: rangeSec,
      candidates,
    };
  }
  if (wholeSec !== null) {
    return {
      mode: 'whole',
      stages: whole!.stages,
      replanned: { start: 0, end: L },
      timeline: whole!.timeline,
      resumeSec: wholeSec,
      candidates,
    };
  }
  const gib = (b: number) => (b / 2 ** 30).toFixed(2);
  const what = range
    ? `layers ${range.lost.start + 1}-${range.lost.end} need ${gib(range.needBytes)} GiB on one page and the largest free page has ${gib(range.freeMax)} GiB`
    : `no split of the ${L} layers fits the remaining pages`;
  throw new TandemError(
    'repair-infeasible',
    `cannot recover: ${what}; add a device with ${range ? gib(range.needBytes) : 'more'} GiB free (or more devices) to make the request recoverable`,
  );
}

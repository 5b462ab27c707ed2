/**
 * Timing model [17]-[24]: evaluates ANY plan (devices in pipeline order, each with a contiguous layer
 * range) and returns each stage's load, wait, comm, compute, start and finish, plus the latency T.
 * All devices start loading at t = 0; a stage starts when its load is done and the upstream stage has
 * finished; then it receives the activations (comm) and computes.
 */
import { TandemError } from '../core/errors.ts';
import {
  buildCostTable,
  commTime,
  exitTime,
  stageCompute,
  stageLoad,
  stageMemory,
  type CostTable,
} from './stage-costs.ts';
import type { PlanProblem, PlanStage, StageTiming, Timeline } from './types.ts';

/**
 * Checks a plan's shape against [13]-[16]: at least one stage; the stages' layer ranges are non-empty,
 * contiguous, in order and cover 0..L; every device index is valid and used at most once.
 * Throws TandemError('plan-invalid') saying which stage is wrong.
 */
export function checkPlanShape(L: number, K: number, stages: readonly PlanStage[]): void {
  const bad = (msg: string) => new TandemError('plan-invalid', `invalid plan: ${msg}`);
  if (stages.length === 0) throw bad('it has no stages');
  if (stages.length > K) throw bad(`${stages.length} stages for ${K} devices (each device holds at most one)`);
  const used = new Set<number>();
  let next = 0; // the first layer the next stage must start at
  stages.forEach((s, n) => {
    if (!Number.isInteger(s.device) || s.device < 0 || s.device >= K) {
      throw bad(`stage ${n} uses device ${s.device}, valid indices are 0..${K - 1}`);
    }
    if (used.has(s.device)) throw bad(`device ${s.device} holds more than one stage (stage ${n})`);
    used.add(s.device);
    const { start, end } = s.layers;
    if (!Number.isInteger(start) || !Number.isInteger(end)) throw bad(`stage ${n} layer bounds must be integers`);
    if (start !== next) throw bad(`stage ${n} starts at layer ${start} (0-based) but must start at ${next}`);
    if (end <= start) throw bad(`stage ${n} is empty (layers ${start}..${end - 1})`);
    if (end > L) throw bad(`stage ${n} ends at layer ${end - 1} (0-based), the model has ${L} layers`);
    next = end;
  });
  if (next !== L) throw bad(`the stages cover layers 0..${next - 1} (0-based), not all ${L} layers`);
}

/**
 * Evaluates a plan on a precomputed cost table. With a fixed upstream (ct.entry, repair planning) the
 * first stage waits for it and receives from it like any later stage; with a fixed downstream
 * (ct.exit) the latency includes the time after the last stage. Devices in `live` already hold their
 * stage's session (repair: the surviving stages), so their load is 0.
 */
export function evaluateWithCosts(ct: CostTable, stages: readonly PlanStage[], live?: ReadonlySet<number>): Timeline {
  checkPlanShape(ct.L, ct.K, stages);
  const out: StageTiming[] = [];
  let prevFinish = ct.entry?.finish ?? 0; // finish_0 = 0, or the fixed upstream's finish
  let prevDevice = -1;
  let memoryOk = true;
  for (const s of stages) {
    const { start, end } = s.layers;
    const load = live?.has(s.device) ? 0 : stageLoad(ct, s.device, start, end); // [19]; a live session is loaded
    const first = prevDevice < 0;
    const comm = !first ? commTime(ct, prevDevice, s.device, start) : ct.entry ? ct.entry.comm[s.device] : 0; // [20], none for n = 1
    const compute = stageCompute(ct, s.device, start, end); // [21]
    const startTime = Math.max(load, prevFinish); // [17]
    const finishTime = startTime + comm + compute; // [18]
    const wait = Math.max(0, prevFinish - load); // [24]
    const memoryBytes = stageMemory(ct, start, end, s.device); // [22]
    const fits = memoryBytes <= ct.memory[s.device];
    memoryOk &&= fits;
    out.push({
      device: s.device,
      layers: { start, end },
      load,
      wait,
      comm,
      compute,
      startTime,
      finishTime,
      memoryBytes,
      memoryOk: fits,
    });
    prevFinish = finishTime;
    prevDevice = s.device;
  }
  return { latency: prevFinish + exitTime(ct, prevDevice), stages: out, memoryOk }; // [23] T = finish_N
}

/** Evaluates ANY plan under the problem's cost model. Memory is reported (memoryOk), not enforced. */
export function evaluatePlan(p: PlanProblem, stages: PlanStage[]): Timeline {
  return evaluateWithCosts(buildCostTable(p), stages);
}

/**
 * From one request's measured phases to calibration samples (pure). A page reports, per stage, its
 * phases in ms from the server's send of the request's `start`, read through the page's heartbeat clock
 * offset (core/clock-offset.ts; a page that has none yet times from its own arrival of `start`). Per stage this yields one prefill sample (the load split into
 * warm-up, storage read and session creation; the compute) and one decode sample; per hand-over that
 * found its receiver waiting, one hop sample (seconds from the sender's compute end to the receiver's
 * last byte). The costs a sample is divided by (bytes P, FLOPs W, activation bytes A) come from the
 * planner's own cost model, so a fit recovers the parameters the planner multiplies them with.
 */
import type { TimingEntry } from '../core/protocol.ts';
import { buildCostTable, stageCreateBytes, stageFlops, stageParamBytes } from './stage-costs.ts';
import type { PlanProblem, PlanStage } from './types.ts';

/** One stage's prefill on its device (seconds, bytes, FLOP). */
export interface StageSample {
  requestId: number;
  device: number;
  /** Prefill length t the request was planned for. */
  tokens: number;
  /** P: bytes of the stage's units (layers, + embedding on the first, + head on the last). */
  paramBytes: number;
  /** The bytes its session creation prepares: P less the embedding's (stageCreateBytes). */
  createBytes: number;
  /** W: FLOP of the stage's prefill at t. */
  flops: number;
  /** Load phases; null when the stage reused a live session (no read, no creation). */
  load: { warmSec: number; readSec: number; createSec: number } | null;
  /** Prefill compute (+ sampling on the last stage); null when the page reported none. */
  computeSec: number | null;
  /** Median seconds of one decode step's compute (+ sampling), and its FLOP; null without decode steps. */
  decode: { flops: number; computeSec: number } | null;
}

/** One hand-over a -> b whose receiver was already waiting: it measures the link alone. */
export interface HopSample {
  requestId: number;
  from: number;
  to: number;
  bytes: number;
  seconds: number;
}

export interface RequestSamples {
  stages: StageSample[];
  hops: HopSample[];
}

/** Decode steps used per stage (enough for a median, bounded work on long answers). */
export const MAX_DECODE_STEPS = 32;
/** A receiver counts as waiting when its 'wait' lasted at least this long (ms). */
const WAITING_MS = 0.5;

const dur = (t: TimingEntry) => t.endMs - t.startMs;

function at(timings: readonly TimingEntry[], phase: TimingEntry['phase'], step: number): TimingEntry[] {
  return timings.filter((t) => t.phase === phase && t.step === step);
}

const lastEnd = (entries: readonly TimingEntry[]) => Math.max(...entries.map((t) => t.endMs));
const sumSec = (entries: readonly TimingEntry[]) => entries.reduce((s, t) => s + dur(t), 0) / 1000;

/**
 * Samples of one request that ran `stages` (pipeline order) of `problem` (its devices in the same
 * order as the plan's device indices); `timings[n]` is stage n's report (empty when it sent none).
 */
export function requestSamples(
  problem: PlanProblem,
  stages: readonly PlanStage[],
  timings: readonly (readonly TimingEntry[])[],
  requestId: number,
): RequestSamples {
  const prefill = buildCostTable(problem);
  const decode = buildCostTable({ ...problem, tokens: 1 }); // one new token per decode step
  const last = stages.length - 1;
  const out: RequestSamples = { stages: [], hops: [] };

  stages.forEach((s, n) => {
    const t = timings[n] ?? [];
    const { start, end } = s.layers;
    const reads = at(t, 'storage-read', 0);
    const creates = at(t, 'session-create', 0);
    let load: StageSample['load'] = null;
    if (reads.length > 0) {
      const readEnd = lastEnd(reads);
      const loadEnd = Math.max(readEnd, creates.length ? lastEnd(creates) : readEnd);
      load = {
        warmSec: Math.min(...reads.map((r) => r.startMs)) / 1000,
        readSec: sumSec(reads),
        createSec: (loadEnd - readEnd) / 1000, // graph build gaps and session creation
      };
    }
    // The last stage's sampling ends the step (TTFT is its end): count it with the compute.
    const stepCompute = (step: number): number | null => {
      const c = at(t, 'compute', step);
      if (c.length === 0) return null;
      return sumSec(c) + (n === last ? sumSec(at(t, 'sample', step)) : 0);
    };
    const decodeSecs: number[] = [];
    for (let step = 1; step <= MAX_DECODE_STEPS; step++) {
      const c = stepCompute(step);
      if (c === null) break;
      decodeSecs.push(c);
    }
    decodeSecs.sort((a, b) => a - b);
    out.stages.push({
      requestId,
      device: s.device,
      tokens: problem.tokens,
      paramBytes: stageParamBytes(prefill, start, end),
      createBytes: stageCreateBytes(prefill, start, end),
      flops: stageFlops(prefill, start, end),
      load,
      computeSec: stepCompute(0),
      decode: decodeSecs.length
        ? { flops: stageFlops(decode, start, end), computeSec: decodeSecs[decodeSecs.length >> 1] }
        : null,
    });
  });

  // Hand-overs: hidden states n-1 -> n every step, the sampled token last -> first from step 1.
  const hop = (from: number, to: number, step: number, sentAtMs: number | null, bytes: number) => {
    const rt = timings[to] ?? [];
    const waits = at(rt, 'wait', step);
    const received = at(rt, 'receive', step);
    if (sentAtMs === null || received.length === 0 || waits.length === 0) return;
    if (Math.max(...waits.map(dur)) < WAITING_MS) return; // arrived while the receiver was busy: no link time
    // Not clamped at 0: a page without a clock offset times from its own arrival of start, and a hop to a page that
    // got it later reads short, even negative; the fit cancels the offsets around the ring (calibration.ts).
    const seconds = (lastEnd(received) - sentAtMs) / 1000;
    out.hops.push({ requestId, from: stages[from].device, to: stages[to].device, bytes, seconds });
  };
  const endOf = (n: number, phase: TimingEntry['phase'], step: number) => {
    const e = at(timings[n] ?? [], phase, step);
    return e.length ? lastEnd(e) : null;
  };
  for (let n = 1; n <= last; n++) {
    const cut = stages[n].layers.start - 1; // A of the layer before the cut
    for (let step = 0; step <= MAX_DECODE_STEPS; step++) {
      const sentAt = endOf(n - 1, 'compute', step);
      if (sentAt === null) break;
      hop(n - 1, n, step, sentAt, (step === 0 ? prefill : decode).layerAct[cut]);
    }
  }
  if (last > 0) {
    for (let step = 1; step <= MAX_DECODE_STEPS; step++) {
      const sentAt = endOf(last, 'sample', step - 1);
      if (sentAt === null) break;
      hop(last, 0, step, sentAt, TOKEN_FRAME_BYTES);
    }
  }
  return out;
}

/** Payload of a token frame (one int32 id). */
export const TOKEN_FRAME_BYTES = 4;

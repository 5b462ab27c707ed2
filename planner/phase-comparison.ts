/**
 * Per stage and phase, what a model predicts beside what the page measured (pure): warm-up, storage
 * read, session creation (the three parts of the load [19] + [B1], [B2]), the hand-over [20], the prefill
 * compute [21] and the stage's finish [18] (the last stage's finish is the TTFT). Seconds from the
 * request's start. The page view, the server's calibration message and the demo's report all use it.
 */
import type { TimingEntry } from '../core/protocol.ts';
import { buildCostTable, stageCreateBytes, stageParamBytes } from './stage-costs.ts';
import { evaluateWithCosts } from './timing.ts';
import type { PlanProblem, PlanStage } from './types.ts';

export const COMPARED_PHASES = ['warm-up', 'storage-read', 'session-create', 'comm', 'compute', 'finish'] as const;
export type ComparedPhase = (typeof COMPARED_PHASES)[number];
export type PhaseSeconds = Record<ComparedPhase, number>;

/** The model's phases of every stage of `stages` under `problem`'s devices. */
export function predictedPhases(problem: PlanProblem, stages: readonly PlanStage[]): PhaseSeconds[] {
  const ct = buildCostTable(problem);
  const timeline = evaluateWithCosts(ct, stages);
  return stages.map((s, n) => {
    const d = problem.devices[s.device];
    const P = stageParamBytes(ct, s.layers.start, s.layers.end);
    const created = stageCreateBytes(ct, s.layers.start, s.layers.end);
    const t = timeline.stages[n];
    return {
      'warm-up': d.warmupSec ?? 0,
      'storage-read': P / d.readBytesPerSec,
      'session-create':
        (d.sessionCreateFixedSec ?? 0) + (d.sessionCreateBytesPerSec ? created / d.sessionCreateBytesPerSec : 0),
      comm: t.comm,
      compute: t.compute,
      finish: t.finishTime,
    };
  });
}

/**
 * The same phases as measured, per stage (null for a stage without a prefill report). The hand-over is
 * counted as the model counts it: from when both the stage was loaded and its input was sent, to its
 * input's last byte; the last stage's compute includes sampling its first token.
 */
export function measuredPhases(timings: readonly (readonly TimingEntry[])[]): (PhaseSeconds | null)[] {
  const last = timings.length - 1;
  const step0 = (n: number, phase: TimingEntry['phase']) =>
    (timings[n] ?? []).filter((t) => t.step === 0 && t.phase === phase);
  const endMs = (e: readonly TimingEntry[]) => (e.length ? Math.max(...e.map((t) => t.endMs)) : null);
  const sum = (e: readonly TimingEntry[]) => e.reduce((s, t) => s + t.endMs - t.startMs, 0) / 1000;
  return timings.map((_, n) => {
    const reads = step0(n, 'storage-read');
    const computes = step0(n, 'compute');
    if (computes.length === 0) return null;
    const readEnd = endMs(reads) ?? 0;
    const loadEnd = Math.max(readEnd, endMs(step0(n, 'session-create')) ?? readEnd);
    const upstreamEnd = n > 0 ? endMs(step0(n - 1, 'compute')) : null;
    const received = endMs(step0(n, 'receive'));
    const comm =
      upstreamEnd !== null && received !== null ? Math.max(0, received - Math.max(loadEnd, upstreamEnd)) / 1000 : 0;
    const samples = n === last ? step0(n, 'sample') : [];
    return {
      'warm-up': reads.length ? Math.min(...reads.map((t) => t.startMs)) / 1000 : 0,
      'storage-read': sum(reads),
      'session-create': (loadEnd - readEnd) / 1000,
      comm,
      compute: sum(computes) + sum(samples),
      finish: Math.max(endMs(computes) ?? 0, endMs(samples) ?? 0) / 1000,
    };
  });
}

/** |predicted - measured| / measured; null when nothing was measured (0 s). */
export function relativeError(predicted: number, measured: number): number | null {
  return measured > 0 ? Math.abs(predicted - measured) / measured : null;
}

/**
 * Where a decode step's time goes, for the page (pure): per stage the median 'ingress' (input here ->
 * compute began), 'kernel' (compute) and 'egress' (compute ended -> output sent) of the decode steps, and
 * per token the first stage's median cycle beside the stages' compute and overhead. Pages do not share a
 * clock, so the time between stages (the wire and the wake-ups) is what the cycle leaves over.
 */
import type { PredictedStage, TimingEntry } from '../../core/protocol.ts';
import { stepBreakdown } from '../../core/step-breakdown.ts';

export interface StepFigureRow {
  label: string;
  ingressMs: number;
  kernelMs: number;
  egressMs: number;
}

export interface StepFigures {
  rows: StepFigureRow[];
  /** median decode cycle on the first stage's clock, ms */
  perTokenMs: number;
  /** sums over stages of the median kernel, and of the median ingress + egress, ms */
  computeMs: number;
  overheadMs: number;
  /** perTokenMs minus the stages' median step times: between stages, ms */
  betweenMs: number;
}

/** null until every stage reported decode steps (and the first stage two of them). */
export function stepFigures(
  stages: readonly PredictedStage[],
  measured: ReadonlyMap<string, readonly TimingEntry[]>,
): StepFigures | null {
  const ordered = [...stages].sort((a, b) => a.stageIndex - b.stageIndex);
  const b = stepBreakdown(ordered.map((s) => ({ timings: measured.get(s.peerId) ?? [], offsetMs: null })));
  if (b.perTokenMs === null || b.ringWireMs === null || !ordered.length) return null;
  const rows = ordered.map((s, i) => {
    const m = b.stages[i]!;
    return { label: s.displayName, ingressMs: m.ingressMs, kernelMs: m.kernelMs, egressMs: m.egressMs };
  });
  return {
    rows,
    perTokenMs: b.perTokenMs,
    computeMs: rows.reduce((sum, r) => sum + r.kernelMs, 0),
    overheadMs: rows.reduce((sum, r) => sum + r.ingressMs + r.egressMs, 0),
    betweenMs: b.ringWireMs,
  };
}

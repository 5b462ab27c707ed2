/**
 * Where a decode step's time goes, for the page (pure): per stage the median 'ingress' (input here ->
 * compute began), 'kernel' (compute) and 'egress' (compute ended -> output sent) of the decode steps, and
 * per token the first stage's median cycle beside the stages' compute and overhead. The time between
 * stages (the wire and the wake-ups) is what the cycle leaves over; where every page timed the request on
 * the server's clock (core/clock-offset.ts), also each hop's own median, read across its two pages.
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
  /**
   * Where every page's timings are on the server's clock: per hop (stage i -> i + 1, the last back to the
   * first) the median ms from the sender's hand-over to the receiver's input, and the clocks' largest bound.
   */
  hops: { labels: string[]; ms: (number | null)[]; clockBoundMs: number } | null;
}

/** null until every stage reported decode steps (and the first stage two of them). */
export function stepFigures(
  stages: readonly PredictedStage[],
  measured: ReadonlyMap<string, readonly TimingEntry[]>,
  clocks?: ReadonlyMap<string, number | null>,
): StepFigures | null {
  const ordered = [...stages].sort((a, b) => a.stageIndex - b.stageIndex);
  const bounds = ordered.map((s) => clocks?.get(s.peerId));
  const shared = ordered.length > 1 && bounds.every((x) => typeof x === 'number');
  const b = stepBreakdown(ordered.map((s) => ({ timings: measured.get(s.peerId) ?? [], offsetMs: shared ? 0 : null })));
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
    hops:
      shared && b.tokens.length > 0
        ? {
            labels: ordered.map((s, i) => `${s.displayName} → ${ordered[(i + 1) % ordered.length].displayName}`),
            ms: b.hopWireMs,
            clockBoundMs: Math.max(...bounds),
          }
        : null,
  };
}

/**
 * The per-token line under the step table: the cycle and its parts. The rest (between stages, or on one
 * page between its steps) is a difference of medians over different steps, so over a few steps it can
 * come out below zero: it then reads "under 0.1" instead of a negative time.
 */
export function perTokenLine(f: StepFigures): string {
  const ms = (x: number) => x.toFixed(1);
  const rest = f.rows.length > 1 ? 'between stages' : 'between steps';
  const restMs = f.betweenMs >= 0.05 ? ms(f.betweenMs) : 'under 0.1';
  return `Per token ${ms(f.perTokenMs)} ms = compute ${ms(f.computeMs)} + overhead in the stages ${ms(f.overheadMs)} + ${rest} ${restMs} (medians of the decode steps, ms)`;
}

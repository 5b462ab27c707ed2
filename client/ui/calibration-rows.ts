/**
 * The rows of the calibration and what-if panels (pure): per stage and phase, predicted vs measured and
 * the error before and after the server's refit; per plan method, the predicted TTFT and tokens/s.
 */
import type { PlanMethod, ServerMessageOf, WhatIfEntry } from '../../core/protocol.ts';

export interface PhaseRow {
  stage: string;
  phase: string;
  predicted: number | null;
  measured: number;
  calibrated: number;
  /** |predicted - measured| / measured, null when nothing was measured or predicted. */
  errorBefore: number | null;
  errorAfter: number | null;
}

const relErr = (p: number | null, m: number) => (p === null || m <= 0 ? null : Math.abs(p - m) / m);

export function calibrationRows(msg: ServerMessageOf<'calibration'>): PhaseRow[] {
  return msg.stages.flatMap((s, n) =>
    s.phases.map((p) => ({
      stage: `${n + 1}. ${s.displayName}`,
      phase: p.phase,
      predicted: p.predicted,
      measured: p.measured,
      calibrated: p.calibrated,
      errorBefore: relErr(p.predicted, p.measured),
      errorAfter: relErr(p.calibrated, p.measured),
    })),
  );
}

/** Median of the non-null errors (what the goal is stated on), null when there are none. */
export function medianError(errors: readonly (number | null)[]): number | null {
  const v = errors.filter((e): e is number => e !== null).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export interface WhatIfRow extends WhatIfEntry {
  /** The method the current plan used. */
  current: boolean;
  /** The lowest predicted TTFT of all methods. */
  fastest: boolean;
}

export function whatIfRows(entries: readonly WhatIfEntry[], current: PlanMethod): WhatIfRow[] {
  const best = Math.min(...entries.map((e) => e.predictedLatency ?? Infinity));
  return entries.map((e) => ({ ...e, current: e.method === current, fastest: e.predictedLatency === best }));
}

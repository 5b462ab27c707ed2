/**
 * Issue 12's bench goals from a calibration report (pure): the rows and whether each is met, on reports
 * whose figures are written out here, and the ranking distance on orders whose distance is known.
 */
import { describe, expect, it } from 'vitest';
import type { CalibrationReport, PlanCalibration } from './calibration-report.ts';
import { calibrationGoals, discordantPairs } from './calibration-goals.ts';

function plan(
  method: string,
  measuredTtft: number | null,
  predictedAfter: number,
  medianPhase: number,
): PlanCalibration {
  return {
    method,
    planId: `plan-${method}`,
    stages: '',
    measuredTtft,
    predictedBefore: 2 * predictedAfter,
    predictedAfter,
    errorBefore: null,
    errorAfter: measuredTtft === null ? null : Math.abs(predictedAfter - measuredTtft) / measuredTtft,
    medianPhaseErrorBefore: null,
    medianPhaseErrorAfter: medianPhase,
    medianPhaseErrorAfterAll: medianPhase,
    calibratedPages: 4,
    refitted: [],
    phases: [],
  };
}

/** A report as calibrationReport builds it: rankings by predicted-after and by measured TTFT. */
function report(plans: PlanCalibration[]): CalibrationReport {
  const rank = (key: (p: PlanCalibration) => number | null) =>
    plans
      .filter((p) => key(p) !== null)
      .sort((a, b) => key(a)! - key(b)!)
      .map((p) => p.method);
  const ttft = (m: string) => plans.find((p) => p.method === m)?.measuredTtft ?? null;
  const dp = ttft('dp');
  const even = ttft('even');
  return {
    plans,
    predictedRanking: rank((p) => p.predictedAfter),
    predictedRankingBefore: rank((p) => p.predictedBefore),
    measuredRanking: rank((p) => p.measuredTtft),
    rankingHolds: false,
    rankingHoldsBefore: false,
    dpFastest: null,
    dpOverEven: dp !== null && even !== null ? dp / even : null,
    goals: { ttftWithin: false, phasesWithin: false, ranking: false, dpFastest: null },
  };
}

const byName = (rows: ReturnType<typeof calibrationGoals>) => new Map(rows.map((g) => [g.name, g]));

describe('discordantPairs', () => {
  it('is 0 for the same order, 1 for one adjacent swap and n(n-1)/2 for the reverse', () => {
    const order = ['dp', 'heuristic', 'even', 'single'];
    expect(discordantPairs(order, order)).toBe(0);
    expect(discordantPairs(order, ['heuristic', 'dp', 'even', 'single'])).toBe(1);
    expect(discordantPairs(order, [...order].reverse())).toBe(6);
  });

  it('counts only the methods both orders hold', () => {
    expect(discordantPairs(['dp', 'even', 'single'], ['single', 'dp'])).toBe(1);
  });
});

describe('calibrationGoals', () => {
  it('meets every goal when each plan is predicted within 15 % and DP is fastest, 0.75x even, in the predicted order', () => {
    const rows = byName(
      calibrationGoals(
        report([plan('dp', 3.0, 3.3, 0.1), plan('even', 4.0, 3.7, 0.12), plan('single', 5.0, 5.5, 0.05)]),
        'paper lab',
      ),
    );
    expect(rows.get('dp: |predicted - measured| / measured TTFT after calibration')?.value).toBeCloseTo(0.1, 12);
    expect(rows.get('even: |predicted - measured| / measured TTFT after calibration')?.value).toBeCloseTo(0.075, 12);
    expect(rows.get("DP TTFT / fastest other plan's TTFT (paper lab)")?.value).toBeCloseTo(0.75, 12);
    expect(rows.get('DP TTFT / even TTFT (paper lab)')?.value).toBeCloseTo(0.75, 12);
    expect(rows.get('plan pairs ranked differently, measured vs predicted TTFT')?.value).toBe(0);
    expect([...rows.values()].map((g) => [g.name, g.met]).filter(([, met]) => met !== true)).toEqual([]);
    expect(rows.size).toBe(3 * 2 + 3);
  });

  it('fails the plan whose TTFT or phases are off, DP slower than another plan, and a swapped ranking', () => {
    // heuristic measured fastest (2.5 s) but predicted slowest; even predicted 20 % low; single's phases 30 % off
    const rows = byName(
      calibrationGoals(
        report([
          plan('dp', 3.0, 3.0, 0.1),
          plan('even', 3.5, 2.8, 0.1),
          plan('heuristic', 2.5, 3.6, 0.1),
          plan('single', 5.0, 5.0, 0.3),
        ]),
        'paper lab',
      ),
    );
    const met = (name: string) => rows.get(name)?.met;
    expect(met('dp: |predicted - measured| / measured TTFT after calibration')).toBe(true);
    expect(met('even: |predicted - measured| / measured TTFT after calibration')).toBe(false);
    expect(met('heuristic: |predicted - measured| / measured TTFT after calibration')).toBe(false);
    expect(met('single: median per-phase error after calibration')).toBe(false);
    expect(met('single: |predicted - measured| / measured TTFT after calibration')).toBe(true);
    expect(rows.get("DP TTFT / fastest other plan's TTFT (paper lab)")?.value).toBeCloseTo(3.0 / 2.5, 12);
    expect(met("DP TTFT / fastest other plan's TTFT (paper lab)")).toBe(false);
    expect(rows.get('DP TTFT / even TTFT (paper lab)')?.value).toBeCloseTo(3.0 / 3.5, 12);
    expect(met('DP TTFT / even TTFT (paper lab)')).toBe(false);
    // predicted even < dp < heuristic < single; measured heuristic < dp < even < single: (even,dp),
    // (even,heuristic), (dp,heuristic) are out of order
    expect(rows.get('plan pairs ranked differently, measured vs predicted TTFT')?.value).toBe(3);
  });

  it('leaves the ranking and DP rows unmeasured when a plan has no measured TTFT, and every row without a report', () => {
    const rows = byName(calibrationGoals(report([plan('dp', 3.0, 3.0, 0.1), plan('even', null, 4.0, 0.1)]), 'lab'));
    expect(rows.get('even: |predicted - measured| / measured TTFT after calibration')?.met).toBeNull();
    expect(rows.get("DP TTFT / fastest other plan's TTFT (lab)")?.value).toBeNull();
    expect(rows.get('plan pairs ranked differently, measured vs predicted TTFT')?.value).toBeNull();
    const none = calibrationGoals(null, 'lab');
    expect(none.length).toBe(5);
    expect(none.every((g) => g.value === null && g.met === null)).toBe(true);
  });
});

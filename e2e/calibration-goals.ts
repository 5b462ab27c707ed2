/**
 * Issue 12's goals as bench goal rows (pure), computed from one run's calibration report: per plan the
 * TTFT error and the median per-phase error after calibration (<= 15 %), the DP plan's measured TTFT the
 * lowest of the plans run and <= 0.8x the even plan's, and the measured ranking of the plans equal to the
 * predicted one (counted as pairs of plans in a different order, so a near miss shows as 1, not as 'no').
 */
import { goal, type Goal } from './bench-output.ts';
import { GOAL_ERROR, type CalibrationReport } from './calibration-report.ts';

/** The bound on DP / even measured TTFT. */
export const GOAL_DP_OVER_EVEN = 0.8;

/** Pairs of methods that `a` and `b` put in a different order (Kendall distance), over the methods both rank. */
export function discordantPairs(a: readonly string[], b: readonly string[]): number {
  const common = a.filter((m) => b.includes(m));
  let pairs = 0;
  for (let i = 0; i < common.length; i++)
    for (let j = i + 1; j < common.length; j++) if (b.indexOf(common[i]) > b.indexOf(common[j])) pairs++;
  return pairs;
}

/**
 * The goal rows. `lineup` names the devices the plans ran on (e.g. 'paper lab'); with no report (the plan
 * comparison skipped) every row is there, not measured.
 */
export function calibrationGoals(report: CalibrationReport | null, lineup: string): Goal[] {
  const plans = report?.plans ?? [];
  const perPlan =
    plans.length > 0
      ? plans.flatMap((p) => [
          goal(`${p.method}: |predicted - measured| / measured TTFT after calibration`, p.errorAfter, '<=', GOAL_ERROR),
          goal(`${p.method}: median per-phase error after calibration`, p.medianPhaseErrorAfter, '<=', GOAL_ERROR),
        ])
      : [
          goal('every plan: TTFT error after calibration', null, '<=', GOAL_ERROR),
          goal('every plan: median per-phase error after calibration', null, '<=', GOAL_ERROR),
        ];
  const ttft = (method: string) => plans.find((p) => p.method === method)?.measuredTtft ?? null;
  const dp = ttft('dp');
  const others = plans.filter((p) => p.method !== 'dp').map((p) => p.measuredTtft);
  const fastestOther = others.length > 0 && others.every((t) => t !== null) ? Math.min(...others) : null;
  // Both rankings must cover every plan run: a plan without a measured TTFT leaves the ranking unmeasured.
  const rankedAll =
    report !== null &&
    report.measuredRanking.length === plans.length &&
    report.predictedRanking.length === plans.length;
  return [
    ...perPlan,
    goal(
      `DP TTFT / fastest other plan's TTFT (${lineup})`,
      dp !== null && fastestOther !== null && fastestOther > 0 ? dp / fastestOther : null,
      '<=',
      1,
    ),
    goal(`DP TTFT / even TTFT (${lineup})`, report?.dpOverEven ?? null, '<=', GOAL_DP_OVER_EVEN),
    goal(
      'plan pairs ranked differently, measured vs predicted TTFT',
      rankedAll && plans.length > 1 ? discordantPairs(report.predictedRanking, report.measuredRanking) : null,
      '=',
      0,
    ),
  ];
}

/**
 * The run a plan method is reported by when it ran several times from cold (pure): the one of median
 * measured TTFT (the lower middle for an even count), so that its prediction, phases and timeline all
 * come from one real request. A run without a TTFT (it failed) sorts last.
 */
export interface RepeatedRun {
  planId: string;
  /** the plan's predicted TTFT when it was made, s */
  predicted: number;
  measuredTtft: number | null;
  /** e.g. 'dev1:3 -> dev4:2 -> dev2:10' */
  stages: string;
}

export function medianRunIndex(runs: readonly { measuredTtft: number | null }[]): number {
  if (runs.length === 0) throw new Error('no runs to choose from');
  const order = runs
    .map((r, i) => ({ i, t: r.measuredTtft ?? Number.POSITIVE_INFINITY }))
    .sort((a, b) => a.t - b.t || a.i - b.i);
  return order[(runs.length - 1) >> 1].i;
}

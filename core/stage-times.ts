/**
 * The six predicted times of one pipeline stage (seconds from the request's start): one row of the
 * plan's Gantt chart. The planner computes them, the protocol carries them, the timeline draws them;
 * `stageTimes` copies just these fields, so a new one is added in one place. [n]: the CSGO paper's equations.
 */
export interface StageTimes {
  /** [19] Reading the stage's parameters (and creating its session). */
  load: number;
  /** [24] Idle between the load's end and the upstream activations' arrival. */
  wait: number;
  /** [20] Receiving the activations from the previous stage (0 for the first). */
  comm: number;
  /** [21] */
  compute: number;
  /** [17] max(load, the previous stage's finish). */
  startTime: number;
  /** [18] startTime + comm + compute. */
  finishTime: number;
}

/** The timing fields of `s` (a planner StageTiming, a protocol PredictedStage, ...), nothing else. */
export function stageTimes(s: StageTimes): StageTimes {
  return {
    load: s.load,
    wait: s.wait,
    comm: s.comm,
    compute: s.compute,
    startTime: s.startTime,
    finishTime: s.finishTime,
  };
}

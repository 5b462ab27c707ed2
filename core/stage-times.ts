/**
 * The six predicted times of one pipeline stage (seconds from the request's start): one row of the
 * plan's Gantt chart. The planner computes them, the protocol carries them, the timeline draws them;
 * `stageTimes` copies just these fields, so a new one is added in one place.
 */
export interface StageTimes {
  /** Reading the stage's parameters (and creating its session). */
  load: number;
  /** Idle between the load's end and the upstream activations' arrival. */
  wait: number;
  /** Receiving the activations from the previous stage (0 for the first). */
  comm: number;
  compute: number;
  /** max(load, the previous stage's finish). */
  startTime: number;
  /** startTime + comm + compute. */
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

/**
 * A plan's stages as the protocol carries them (`plan-ready`, `repair`, `assignment`): in pipeline
 * order, the first embeds, the last holds the head. The coordinator's plans and failover.ts's repairs
 * both describe their stages with it. Pure.
 */
import type { LayerRangeWire, PredictedStage } from '../core/protocol.ts';
import { stageTimes, type StageTimes } from '../core/stage-times.ts';

/** One stage as a planner placed it: its page, its layers (0-based half-open) and its predicted times. */
export interface PlacedStage {
  page: { peerId: string; displayName: string };
  layers: LayerRangeWire;
  times: StageTimes;
}

export function predictedStages(stages: readonly PlacedStage[]): PredictedStage[] {
  const last = stages.length - 1;
  return stages.map(({ page, layers, times }, i) => ({
    stageIndex: i,
    peerId: page.peerId,
    displayName: page.displayName,
    layers: { start: layers.start, end: layers.end },
    embeds: i === 0,
    hasHead: i === last,
    ...stageTimes(times),
  }));
}

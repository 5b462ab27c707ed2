/**
 * Failover after a stage is lost mid-request (docs/failover.md): from the session's remaining pages and
 * the lost attempt's stages to the repaired pipeline (planner/repair.ts's planRepair, 'auto' mode), or
 * to the reason recovery is impossible, with the figure that would make it possible. Pure: the
 * coordinator calls these and turns the result into messages.
 */
import { TandemError } from '../core/errors.ts';
import type { MemoryModel, PredictedStage, ProfileReport } from '../core/protocol.ts';
import { planRepair, type RepairInput, type RepairPlan } from '../planner/repair.ts';
import { buildCostTable, stageMemory } from '../planner/stage-costs.ts';
import type { HeldUnits, PlanStage } from '../planner/types.ts';
import type { ModelManifest } from '../shards/manifest.ts';
import { deviceProfileFor, modelConfigFor } from './planning.ts';
import { predictedStages } from './predicted-stages.ts';

/** A page that may take part in the repair: connected, profiled, not lost during this request. */
export interface RemainingPage {
  peerId: string;
  displayName: string;
  profile: ProfileReport;
  /** Unit ids the page reported holding (cache-status). */
  cachedUnits: readonly string[];
}

export interface FailoverInput {
  manifest: ModelManifest;
  memoryModel: MemoryModel;
  /** Every remaining page, idle roster pages included, in roster order (the planner's device order). */
  pages: readonly RemainingPage[];
  /** The lost attempt's stages, in pipeline order (lost and surviving ones). */
  stages: readonly PredictedStage[];
  /** Peers lost during the request (this loss and earlier ones). */
  lostPeerIds: ReadonlySet<string>;
  /** History length: prompt tokens + tokens generated so far. */
  replayTokens: number;
}

export type FailoverPlan =
  | {
      ok: true;
      mode: RepairPlan['mode'];
      /** The repaired pipeline, with the repair's predicted timeline (seconds from the repair). */
      stages: PredictedStage[];
      /** Predicted seconds from the repair to the next token. */
      resumeSec: number;
    }
  | { ok: false; message: string };

/** The units a page holds, as the planner counts them (layer ids 'layer.N' are 0-based). */
export function heldUnitsOf(cachedUnits: readonly string[]): HeldUnits {
  const layers: number[] = [];
  for (const id of cachedUnits) {
    const m = /^layer\.(\d+)$/.exec(id);
    if (m) layers.push(Number(m[1]));
  }
  return { layers, embedding: cachedUnits.includes('embed'), head: cachedUnits.includes('head') };
}

/** The planner's repair problem for a loss: remaining pages as devices, surviving stages on them. */
export function repairInputFor(input: FailoverInput): RepairInput {
  const index = new Map(input.pages.map((p, k) => [p.peerId, k]));
  const survivors: PlanStage[] = [];
  for (const s of input.stages) {
    const device = index.get(s.peerId);
    if (device !== undefined && !input.lostPeerIds.has(s.peerId))
      survivors.push({ device, layers: { start: s.layers.start, end: s.layers.end } });
  }
  return {
    model: modelConfigFor(input.manifest),
    devices: input.pages.map((p) =>
      deviceProfileFor({ peerId: p.peerId, displayName: p.displayName, profile: p.profile }, input.manifest.dtype),
    ),
    held: input.pages.map((p) => heldUnitsOf(p.cachedUnits)),
    survivors,
    replayTokens: input.replayTokens,
    memoryModel: input.memoryModel,
    embeddingAndHead: true,
    mode: 'auto',
  };
}

/** Bytes the whole model needs on one page at `tokens` tokens (the planner's memory model). */
export function wholeModelBytes(manifest: ModelManifest, memoryModel: MemoryModel, tokens: number): number {
  const ct = buildCostTable({
    model: modelConfigFor(manifest),
    // Memory does not depend on the device; the cost table needs one to be built.
    devices: [
      {
        name: 'any',
        peakFlops: 1,
        utilA: 1,
        utilB: 1,
        readBytesPerSec: 1,
        memoryBytes: 1,
        uplinkBitsPerSec: 1,
        downlinkBitsPerSec: 1,
      },
    ],
    tokens,
    memoryModel,
    embeddingAndHead: true,
  });
  return stageMemory(ct, 0, ct.L, null);
}

export function formatGb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(bytes < 1e8 ? 2 : 1)} GB`;
}

/** Plans the repair of a loss, or says why it cannot be done and what would make it possible. */
export function planFailover(input: FailoverInput): FailoverPlan {
  if (input.pages.length === 0) {
    const need = wholeModelBytes(input.manifest, input.memoryModel, input.replayTokens);
    return {
      ok: false,
      message: `no page remains to take over: add a device with ${formatGb(need)} free (the whole model at ${input.replayTokens} tokens) and send the prompt again`,
    };
  }
  let plan: RepairPlan;
  try {
    plan = planRepair(repairInputFor(input));
  } catch (error) {
    if (error instanceof TandemError && (error.code === 'repair-infeasible' || error.code === 'plan-infeasible'))
      return { ok: false, message: error.message };
    throw error;
  }
  const stages = predictedStages(
    plan.stages.map((s, i) => ({ page: input.pages[s.device], layers: s.layers, times: plan.timeline.stages[i] })),
  );
  return { ok: true, mode: plan.mode, stages, resumeSec: plan.resumeSec };
}

/** The layer ranges of the lost stages (what `stage-lost` names). */
export function lostLayers(stages: readonly PredictedStage[], lost: ReadonlySet<string>) {
  return stages.filter((s) => lost.has(s.peerId)).map((s) => ({ start: s.layers.start, end: s.layers.end }));
}

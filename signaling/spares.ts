/**
 * Spares for a session's plan (docs/failover.md, "Spares"): from the plan request (every connected,
 * profiled page with the units it reported) and the planned stages to the idle pages that should keep a
 * warm copy of a stage, chosen by planner/spares.ts's planSpares over the repairs the failover would
 * plan (the same devices and held units as failover.ts's repairInputFor). Runs where plans run (the
 * planner worker), after the plan itself. Pure.
 */
import type { LayerRangeWire } from '../core/protocol.ts';
import { dpStateCount } from '../planner/dp.ts';
import { planSpares } from '../planner/spares.ts';
import { heldUnitsOf } from './failover.ts';
import {
  deviceProfileFor,
  modelConfigFor,
  planWithPlanner,
  type PlannedStage,
  type PlanOutcome,
  type PlanRequest,
  type StagePlanner,
} from './planning.ts';

/** Sessions larger than this get no spares: every candidate assignment costs a repair plan per stage. */
export const MAX_SPARE_SESSION_PAGES = 12;
/** Repair plans the spare search may make per plan (planSpares' budget), at most. */
export const SPARE_REPAIR_BUDGET = 600;
/**
 * ... and at most this many exact-DP states over all of them: a repair's whole re-plan over K - 1 pages
 * visits up to 2^(K-1) (K-1) (L+1) states, so large sessions get fewer evaluations (a best-so-far choice)
 * and the plan, which waits for its spares, stays about as quick to come as before.
 */
export const SPARE_DP_STATE_BUDGET = 3e7;

/** An idle page that should keep a warm copy of a stage. */
export interface PlannedSpare {
  /** Index into PlanRequest.candidates. */
  candidate: number;
  stageIndex: number;
  layers: LayerRangeWire;
  /** Predicted seconds from that stage's loss to the next token with the chosen spares, and without any. */
  predictedResumeSec: number;
  withoutSparesSec: number;
}

/** The spares for `stages` (the plan made for `request`); empty when no idle page would make a loss cheaper. */
export function sparesFor(request: PlanRequest, stages: readonly PlannedStage[]): PlannedSpare[] {
  const { candidates } = request;
  if (candidates.length > MAX_SPARE_SESSION_PAGES) return [];
  const planned = new Set(stages.map((s) => s.candidate));
  const idle = candidates.map((_, k) => k).filter((k) => !planned.has(k));
  if (idle.length === 0) return [];
  const result = planSpares({
    model: modelConfigFor(request.manifest),
    // As the failover sees the pages: their profiles (repairInputFor), in roster order.
    devices: candidates.map((c) =>
      deviceProfileFor({ peerId: c.peerId, displayName: c.displayName, profile: c.profile }, request.manifest.dtype),
    ),
    held: candidates.map((c) => heldUnitsOf(c.cachedUnits ?? [])),
    stages: stages.map((s) => ({ device: s.candidate, layers: { start: s.layers.start, end: s.layers.end } })),
    idle,
    tokens: request.tokens,
    memoryModel: request.memoryModel,
    embeddingAndHead: true,
    maxRepairs: spareRepairBudget(candidates.length, request.manifest.config.num_hidden_layers),
  });
  return (
    result.spares
      .map((s) => ({
        candidate: s.device,
        stageIndex: s.stage,
        layers: s.layers,
        predictedResumeSec: result.lossSec[s.stage],
        withoutSparesSec: result.baselineSec[s.stage],
      }))
      // A stage whose loss no page could repair gains nothing from a copy (and the wire carries no Infinity).
      .filter((s) => Number.isFinite(s.withoutSparesSec))
  );
}

/** How many repair plans the spare search of a session of `pages` pages and `layers` layers may make. */
export function spareRepairBudget(pages: number, layers: number): number {
  return Math.min(
    SPARE_REPAIR_BUDGET,
    Math.floor(SPARE_DP_STATE_BUDGET / dpStateCount(Math.max(1, pages - 1), layers)),
  );
}

/** planWithPlanner, plus the plan's spares when the request asks for them. */
export const planWithSpares: StagePlanner = (request) => {
  const outcome: PlanOutcome = planWithPlanner(request);
  return request.spares ? { ...outcome, spares: sparesFor(request, outcome.stages) } : outcome;
};

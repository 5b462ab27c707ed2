/**
 * The host's what-if panel (issue 12, item 4): before Go, every plan method's predicted time to the
 * first token and decode tokens/s on the session's current devices, calibrated where measured. Pure.
 */
import type { PlanMethod, WhatIfEntry } from '../core/protocol.ts';
import { decodeTokensPerSec } from '../planner/decode-model.ts';
import { TandemError, type Timeline } from '../planner/index.ts';
import { planProblemFor, runPlanner, type PlanRequest } from './planning.ts';

export const WHAT_IF_METHODS: readonly PlanMethod[] = ['dp', 'even', 'heuristic', 'single'];

/** One entry per method; `planned` is the timeline of the request's own method (not planned again). */
export function whatIf(request: PlanRequest, planned?: Timeline): WhatIfEntry[] {
  const problem = planProblemFor(request);
  const decodeFlops = request.candidates.map((c) => c.calibration?.decodeFlopsPerSec ?? null);
  return WHAT_IF_METHODS.map((method): WhatIfEntry => {
    try {
      const timeline = method === request.method && planned ? planned : runPlanner({ ...request, method });
      return {
        method,
        predictedLatency: timeline.latency,
        tokensPerSec: decodeTokensPerSec(problem, timeline.stages, decodeFlops),
        stageCount: timeline.stages.length,
      };
    } catch (err) {
      if (!(err instanceof TandemError)) throw err;
      return { method, predictedLatency: null, tokensPerSec: null, stageCount: 0, reason: err.message };
    }
  });
}

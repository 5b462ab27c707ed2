/**
 * From the session's reported profiles and the model package to a plan: builds the planner's
 * PlanProblem (model config from the manifest, one DeviceProfile per profiled peer, embedding and
 * head counted, each page's memory limit) and runs the chosen method. Pure.
 */
import type { ModelManifest, PackageDType } from '../shards/manifest.ts';
import { baselinePlan, planOptimal, TandemError } from '../planner/index.ts';
import type { DeviceProfile, ModelConfig, PlanProblem, Timeline } from '../planner/index.ts';
import { calibratedDevice } from '../planner/calibration.ts';
import type {
  Backend,
  CalibratedParams,
  LayerRangeWire,
  MemoryModel,
  PlanMethod,
  ProfileReport,
  RosterProfile,
  WhatIfEntry,
} from '../core/protocol.ts';
import type { PlannedSpare } from './spares.ts';
import { whatIf } from './what-if.ts';
import { stageTimes } from '../core/stage-times.ts';
import type { StageTimes } from '../core/stage-times.ts';

export interface PlanCandidate {
  peerId: string;
  displayName: string;
  profile: ProfileReport;
  /** Parameters refitted from this page's measured requests (calibration-store.ts); absent: the profile's. */
  calibration?: CalibratedParams | null;
  /** Unit ids the page reported holding (cache-status): spares count them (spares.ts). */
  cachedUnits?: readonly string[];
}

export interface PlanRequest {
  manifest: ModelManifest;
  candidates: PlanCandidate[];
  /** Prompt length t, tokens. */
  tokens: number;
  method: PlanMethod;
  memoryModel: MemoryModel;
  /** Also choose the idle pages that keep a warm copy of a stage (spares.ts; docs/failover.md). */
  spares?: boolean;
}

/** A planned stage and its predicted times (seconds from the request's start). */
export interface PlannedStage extends StageTimes {
  /** Index into PlanRequest.candidates. */
  candidate: number;
  layers: LayerRangeWire;
}

export interface PlanOutcome {
  /** Predicted cold-start latency T, seconds. */
  latency: number;
  /** In pipeline order. */
  stages: PlannedStage[];
  /** Every method's predicted TTFT and tokens/s on the same devices (the host's what-if panel). */
  whatIf?: WhatIfEntry[];
  /** The refitted parameters the plan used, per candidate. */
  calibrated?: { candidate: number; params: CalibratedParams | null }[];
  /** Idle pages to keep a warm copy of a stage (when the request asked for spares). */
  spares?: PlannedSpare[];
}

/** Plans a session; throws TandemError('plan-infeasible') when no plan fits. */
export type StagePlanner = (request: PlanRequest) => PlanOutcome;

/** Bytes per stored parameter of a package dtype (q4: 4 bits + one fp32 scale per 32 weights). */
export function bytesPerParamFor(dtype: PackageDType): number {
  switch (dtype) {
    case 'fp32':
      return 4;
    case 'fp16':
      return 2;
    case 'q4':
      return 0.5 + 4 / 32;
  }
}

/**
 * Bytes a session holds per stored byte of a `dtype` package's weights on `backend`: the stage graph casts
 * fp16 weights to fp32 at session creation (stage-graph.ts, on every backend); q4 runs on wasm as
 * DequantizeLinear -> MatMul, folded to fp32 at creation, and on WebGPU as MatMulNBits, which keeps 4 bits.
 */
export function residentWeightScale(dtype: PackageDType, backend: Backend): number {
  if (dtype === 'fp16') return 4 / bytesPerParamFor('fp16');
  if (dtype === 'q4' && backend === 'wasm') return 4 / bytesPerParamFor('q4');
  return 1;
}

/**
 * The same for the embedding and the head: a q4 package stores them in float32 (shards/convert.ts), held
 * as stored on every backend; an fp16 package's are cast to fp32 like its layers.
 */
export function residentExtrasScale(dtype: PackageDType): number {
  return dtype === 'fp16' ? 4 / bytesPerParamFor('fp16') : 1;
}

export function modelConfigFor(manifest: ModelManifest): ModelConfig {
  const c = manifest.config;
  return {
    num_hidden_layers: c.num_hidden_layers,
    hidden_size: c.hidden_size,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    ...(c.head_dim !== undefined ? { head_dim: c.head_dim } : {}),
    intermediate_size: c.intermediate_size,
    vocab_size: c.vocab_size,
    bytesPerParam: bytesPerParamFor(manifest.dtype),
    // Hidden states travel between pages as float32 frames.
    bytesPerActivation: 4,
    ...(manifest.dtype === 'q4' ? { extrasBytesPerParam: 4 } : {}), // shards/convert.ts keeps them float32
  };
}

/** The device as planned: the profile, refitted where the page's requests were measured. */
export function deviceProfileFor(candidate: PlanCandidate, dtype?: PackageDType): DeviceProfile {
  return calibratedDevice(profileDevice(candidate, dtype), candidate.calibration ?? null);
}

/**
 * The device as its page's profile describes it (before calibration). With the package's `dtype`, its
 * memory is counted in the package's stored bytes, which the planner's memory term [22] adds up: the page's
 * budget divided by what its backend holds per stored byte (`residentWeightScale`), so that an fp16 or q4
 * stage is not planned at a half or a sixth of what it will take. The layers' activations are then counted
 * at that scale too, which errs on the safe side. The embedding and head, which a q4 package stores in
 * float32 and every backend holds as stored, take `extrasMemoryScale` of that budget per stored byte.
 */
export function profileDevice(
  candidate: { peerId: string; profile: RosterProfile },
  dtype?: PackageDType,
): DeviceProfile {
  const p = candidate.profile;
  return {
    name: candidate.peerId,
    peakFlops: p.peakFlops,
    utilA: p.utilA,
    utilB: p.utilB,
    readBytesPerSec: p.readBytesPerSec,
    memoryBytes: dtype ? p.memoryBytes / residentWeightScale(dtype, p.backend) : p.memoryBytes,
    ...(dtype ? { extrasMemoryScale: residentExtrasScale(dtype) / residentWeightScale(dtype, p.backend) } : {}),
    uplinkBitsPerSec: p.uplinkBitsPerSec,
    downlinkBitsPerSec: p.downlinkBitsPerSec,
    // Browser terms, when the page measured them (its session-create rate is already in readBytesPerSec).
    ...(p.sessionCreateFixedSec !== undefined ? { sessionCreateFixedSec: p.sessionCreateFixedSec } : {}),
    ...(p.warmupSec !== undefined ? { warmupSec: p.warmupSec } : {}),
    ...(p.linkLatencySec !== undefined ? { linkLatencySec: p.linkLatencySec } : {}),
  };
}

/** The planner problem a session's plan request stands for. */
export function planProblemFor(request: PlanRequest): PlanProblem {
  return {
    model: modelConfigFor(request.manifest),
    devices: request.candidates.map((c) => deviceProfileFor(c, request.manifest.dtype)),
    tokens: request.tokens,
    memoryModel: request.memoryModel,
    embeddingAndHead: true,
  };
}

/** Runs `method` on the request's problem and returns the timeline from planner/. */
export function runPlanner(request: PlanRequest): Timeline {
  const problem = planProblemFor(request);
  if (request.method === 'dp') return planOptimal(problem);
  const timeline = baselinePlan(problem, request.method);
  // Baselines ignore memory; a page must never be handed more than it said it can hold.
  const over = timeline.stages.find((s) => s.memoryOk === false);
  if (over)
    throw new TandemError(
      'plan-infeasible',
      `the ${request.method} plan gives ${request.candidates[over.device].displayName} layers ${over.layers.start + 1}-${over.layers.end} ` +
        `(${((over.memoryBytes ?? 0) / 2 ** 20).toFixed(1)} MiB of the package), more than its ${(problem.devices[over.device].memoryBytes / 2 ** 20).toFixed(1)} MiB (its memory budget in package bytes): use method 'dp'`,
    );
  return timeline;
}

export const planWithPlanner: StagePlanner = (request) => {
  const timeline = runPlanner(request);
  return {
    whatIf: whatIf(request, timeline),
    calibrated: request.candidates.map((c, candidate) => ({ candidate, params: c.calibration ?? null })),
    latency: timeline.latency,
    stages: timeline.stages.map((s) => ({
      candidate: s.device,
      layers: { start: s.layers.start, end: s.layers.end },
      ...stageTimes(s),
    })),
  };
};

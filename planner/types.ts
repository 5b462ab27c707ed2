/**
 * The planner's public data types (the binding cross-team contract, plus a few optional extras).
 * Units inside the planner are SI: seconds, bytes, FLOP, FLOP/s, bytes/s, bit/s.
 * Layer ranges are 0-based and half-open: `{ start, end }` covers layers start .. end-1.
 */
import type { StageTimes } from '../core/stage-times.ts';

/** A transformer's shape, with Hugging Face config.json field names, plus storage precision. */
export interface ModelConfig {
  num_hidden_layers: number; // L
  hidden_size: number; // d_model
  num_attention_heads: number; // h_q
  num_key_value_heads: number; // h_k
  head_dim?: number; // d_head; default hidden_size / num_attention_heads
  intermediate_size: number; // d_ff
  vocab_size: number; // V (used only by the embedding / LM head costs)
  bytesPerParam: number; // bytes per stored parameter (2 for bf16/fp16, 4 for fp32, ~0.5625 for q4)
  /** Bytes per activation value sent between stages and held in memory; default 2 (bf16, as the paper). */
  bytesPerActivation?: number;
  /**
   * Bytes per stored parameter of the embedding and the head, where they are stored otherwise than the
   * layers: a q4 package keeps its layers' matrices in 4 bits but its embedding and head in float32 (4),
   * which bytesPerParam would count at an eighth of their size. Default bytesPerParam.
   */
  extrasBytesPerParam?: number;
}

/** One device, as the planner sees it (SI units). */
export interface DeviceProfile {
  name: string;
  peakFlops: number; // c*_k, FLOP/s
  utilA: number; // a_k in U_k(t) = a_k (1 - exp(-b_k t))   [8]
  utilB: number; // b_k, 1/token
  readBytesPerSec: number; // r_k, storage read speed, bytes/s
  memoryBytes: number; // m_k, bytes
  uplinkBitsPerSec: number; // b^u_k, bit/s
  downlinkBitsPerSec: number; // b^d_k, bit/s
  // Browser terms (docs/cost-model.md, "Browser terms"). Absent = 0 / free: the paper's model.
  /** s_k: rate of creating the runtime session from weights already read, bytes/s (adds P / s_k to the load). */
  sessionCreateBytesPerSec?: number;
  /** f_k: fixed seconds per stage for creating its session (graph parse, allocation). */
  sessionCreateFixedSec?: number;
  /** w_k: one-off runtime warm-up of the device (wasm/shader compile), seconds, added to its stage's load. */
  warmupSec?: number;
  /** lambda_k: one-way latency of the device's link to the relay, seconds; a hop costs sender's + receiver's. */
  linkLatencySec?: number;
  /** g_k: rate of fetching a unit the device does not hold (repair planning), bytes/s; default downlink / 8. */
  downloadBytesPerSec?: number;
  /**
   * Bytes of memoryBytes one stored byte of the embedding or the head takes, where the device holds them at
   * another scale than its layers (memoryBytes is counted in layer bytes): a q4 package on wasm holds its
   * layers dequantised (7.1x their stored size) but its float32 embedding and head as stored, so 1 / 7.1.
   * Default 1.
   */
  extrasMemoryScale?: number;
}

/**
 * Units a device already holds in its local store (IndexedDB): loading them costs no download.
 * Only used when the problem says which units are held (PlanProblem.heldUnits); layers are 0-based.
 */
export interface HeldUnits {
  layers: readonly number[];
  embedding?: boolean;
  head?: boolean;
}

/** 0-based, half-open: layers start .. end-1. */
export interface LayerRange {
  start: number;
  end: number;
}

/** One pipeline stage: a device (index into the problem's devices) and its contiguous layers. */
export interface PlanStage {
  device: number;
  layers: LayerRange;
}

/** A stage with its timing, the data of one Gantt row (seconds, measured from the request at t = 0). */
export interface StageTiming extends PlanStage, StageTimes {
  /** Memory the stage needs on its device, bytes ([22] or the 'sum' variant). */
  memoryBytes?: number;
  /** Whether memoryBytes fits in the device's memory. */
  memoryOk?: boolean;
}

/** A plan's evaluation: latency T = finish of the last stage [23], and every stage's timing. */
export interface Timeline {
  latency: number;
  stages: StageTiming[];
  /** True when every stage fits in its device's memory. */
  memoryOk?: boolean;
}

/**
 * Memory model for a stage on a device:
 * - 'max' (the paper's printed [22]): max_l A_l + sum_l P_l
 * - 'sum' (what the paper's figures use): sum_l (A_l + P_l)
 */
export type MemoryModel = 'max' | 'sum';

/** Options of the per-layer FLOP count. */
export interface CostOptions {
  /**
   * 'k-and-v' counts the K and V projections as printed in [1] (d_model h_k each);
   * 'once' counts them once together (d_model h_k / 2 each), which reproduces the paper's figures.
   */
  kvProjections?: 'k-and-v' | 'once';
}

/** A planning problem: the model, the candidate devices and the prefill length t. */
export interface PlanProblem {
  model: ModelConfig;
  devices: DeviceProfile[];
  tokens: number; // t, prefill sequence length
  memoryModel?: MemoryModel; // default 'max'
  /** Count the embedding (first stage) and final norm + LM head (last stage); default false, as the paper. */
  embeddingAndHead?: boolean;
  costOptions?: CostOptions;
  /**
   * Measured one-way latency of every hop, seconds: hopLatencySec[from][to] (K x K). When given it
   * replaces the per-device sum linkLatencySec[from] + linkLatencySec[to].
   */
  hopLatencySec?: readonly (readonly number[])[];
  /**
   * Per device, the units it holds locally. When given, every unit a device does NOT hold costs a
   * download (P / g_k) on top of its read; when absent every device holds every unit (the paper).
   */
  heldUnits?: readonly HeldUnits[];
}

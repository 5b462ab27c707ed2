/**
 * The seam between a stage and an ONNX Runtime. One interface, filled by:
 *   - onnxruntime-node (ort-node.ts, backend 'node': native CPU) for the Node CLI, tests and benchmarks;
 *   - onnxruntime-web in Node (ort-node.ts, backend 'wasm': the page's wasm kernels);
 *   - onnxruntime-web in the page (client/runtime/ort-web.ts, 'webgpu' or 'wasm'), usually behind the
 *     page's inference worker (client/runtime/worker-runtime.ts).
 * All of them wrap their package's session with ort-session.ts. Tensors cross the seam as plain typed
 * arrays, so callers never mix the packages' Tensor classes.
 */
import type { HeadSample } from './head-sampling.ts';
import type { OpfsUnit } from './opfs-file.ts';
import type { KeptFiles } from './opfs-read-handles.ts';
import type { LoadPartsPolicy } from './stage-parts.ts';
import type { StageGraphRecipe } from './stage-graph-recipe.ts';
import type { UnitData } from './unit-data.ts';

export type HostTensor =
  | { dtype: 'float32'; dims: number[]; data: Float32Array }
  | { dtype: 'int64'; dims: number[]; data: BigInt64Array }
  | { dtype: 'int32'; dims: number[]; data: Int32Array };

/** Where a page's stage runs. */
export type ExecutionBackend = 'webgpu' | 'wasm';

/** Where any stage runs: a page's backend, or onnxruntime-node's native CPU EP ('node'). */
export type StageBackend = ExecutionBackend | 'node';

export interface SessionRequest {
  /** ONNX ModelProto bytes (shards/stage-graph.ts), or the recipe the runtime builds them from. */
  model: Uint8Array | StageGraphRecipe;
  /**
   * Weight blobs: `path` == TensorProto external-data location == unit file name. A stored unit (an OPFS
   * file or a Blob, unit-data.ts) is read by the runtime (in the page's inference worker, off the main
   * thread) before the session is created.
   */
  externalData: { path: string; data: UnitData }[];
  /** An emulated storage read cap for the stored units' reads of this request, bytes/s (unit-data.ts). */
  readCapBytesPerSec?: number;
  /** Session config entries, e.g. { 'session.disable_quant_qdq': '1' } (shards stageSessionConfig). */
  config: Record<string, string>;
  backend: StageBackend;
  /**
   * Keep the KV cache inside the session, where the compute is: run() then takes no past_key_values.*
   * feeds and returns no present.* outputs; each run's present.{i}.key/value become the next run's past
   * (on WebGPU as GPU buffers, never read back). Absent: the caller feeds and receives the cache.
   */
  kvCache?: KvCacheSpec;
  /**
   * Open a recipe's stage in parts of about equal bytes (stage-parts.ts): each part's session is created
   * while the next parts' units are read. Absent: one session, created once every unit is read.
   */
  loadParts?: LoadPartsPolicy;
  /**
   * Open the stored units' files before the timed reads start, as a prepared stage has them open
   * (opfs-read-handles.ts), and let them go once the session is created: the profile's storage probe
   * then times the read a stage's cold start makes. Default false.
   */
  openAhead?: boolean;
  /**
   * The caller hands `model` and the `externalData` buffers over: a runtime in another thread may move
   * them instead of copying (they can be detached afterwards). Default false.
   */
  handOver?: boolean;
}

/** The KV cache of a stage: past_key_values.{i}.key/value (B=1, heads, past, headDim) for GLOBAL layers i. */
export interface KvCacheSpec {
  layers: number[];
  heads: number;
  headDim: number;
}

export interface RunOptions {
  /** First step of a new sequence: start from an empty KV cache (sessions with `kvCache`). */
  newSequence?: boolean;
  /**
   * The last stage's next token: sample the last position's logits here, where they were computed, and
   * return the token id (head-sampling.ts SAMPLED_TOKEN_OUTPUT, int32 (1)) instead of the logits. A
   * runtime that ignores it returns the logits, and the caller samples them.
   */
  sample?: HeadSample;
}

/**
 * When a run computed, in performance.now() ms of the CALLER's thread (a worker's times are converted to
 * it): the runtime's own span around its session.run, without the trip to and from a worker.
 */
export interface RunTiming {
  startMs: number;
  endMs: number;
}

export interface StageSession {
  readonly backend: StageBackend;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /**
   * The compute span of the last finished run (runs are one at a time per session); absent when the
   * runtime cannot tell, and the caller's own span around run() stands in.
   */
  readonly lastRun?: RunTiming;
  /** Seconds the runtime spent reading stored units before creating the session (0: it got bytes). */
  readonly readSeconds?: number;
  /** How many sessions the stage was opened as (SessionRequest.loadParts); absent: one. */
  readonly parts?: number;
  run(feeds: Record<string, HostTensor>, options?: RunOptions): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

export interface StageRuntime {
  /** Creates an inference session; rejects with TandemError('session-create-failed' | 'webgpu-unavailable'). */
  createSession(req: SessionRequest): Promise<StageSession>;
  /**
   * Does now what a later createSession with this model can do without its weights (builds a recipe's
   * graph and keeps it for that session), so that the cold start does not. Optional; a runtime in
   * another thread leaves it out (the work would land on the caller's thread and help nothing).
   */
  prepareSession?(req: Pick<SessionRequest, 'model' | 'loadParts'>): void;
  /**
   * Keeps stored unit files open on the thread where this runtime will read them (opfs-read-handles.ts):
   * a stage loaded in parts is read on a thread of its own. Optional: without it a stage keeps its files
   * on its own thread.
   */
  keepFiles?(files: readonly OpfsUnit[], opts: { inParts: boolean }): Promise<KeptFiles>;
}

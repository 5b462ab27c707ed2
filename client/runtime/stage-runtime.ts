/**
 * The seam between a StagePeer and an ONNX Runtime: the page fills it with onnxruntime-web (ort-web.ts,
 * WebGPU or wasm); Node tests can fill it with onnxruntime-web's wasm backend in Node through the same
 * file, or with any other runtime that takes the same graph. Tensors cross it as plain typed arrays.
 */

export type HostTensor =
  | { dtype: 'float32'; dims: number[]; data: Float32Array }
  | { dtype: 'int64'; dims: number[]; data: BigInt64Array }
  | { dtype: 'int32'; dims: number[]; data: Int32Array };

export type ExecutionBackend = 'webgpu' | 'wasm';

export interface SessionRequest {
  /** ONNX ModelProto bytes (shards/stage-graph.ts). */
  model: Uint8Array;
  /** Weight blobs: `path` == TensorProto external-data location == unit file name. */
  externalData: { path: string; data: Uint8Array }[];
  /** Session config entries, e.g. { 'session.disable_quant_qdq': '1' } (shards stageSessionConfig). */
  config: Record<string, string>;
  backend: ExecutionBackend;
}

export interface StageSessionHandle {
  readonly backend: ExecutionBackend;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

export interface StageRuntime {
  /** Creates an inference session; rejects with TandemError('session-create-failed' | 'webgpu-unavailable'). */
  createSession(req: SessionRequest): Promise<StageSessionHandle>;
}

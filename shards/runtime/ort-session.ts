/**
 * One ONNX Runtime session behind the StageSession seam, for either package: onnxruntime-node and
 * onnxruntime-web share onnxruntime-common's session and tensor shapes, so only opening a session and
 * building a Tensor differ (each runtime passes an OrtBinding: ort-node.ts, client/runtime/ort-web.ts).
 * Here, once: HostTensor <-> that package's Tensor, the resident KV cache (kv-cache.ts), and the error a
 * failed session creation becomes.
 */
import { TandemError } from '../../core/errors.ts';
import { toOrtExtra } from '../stage-graph.ts';
import { sampleHead } from './head-sampling.ts';
import { ResidentKvCache } from './kv-cache.ts';
import type { HostTensor, RunOptions, RunTiming, SessionRequest, StageBackend, StageSession } from './stage-runtime.ts';
import { materialiseUnits } from './unit-data.ts';
import { stageModelBytes } from './stage-graph-recipe.ts';

/** The parts of an ORT Tensor (onnxruntime-common's) this module reads. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  readonly location: string;
  dispose(): void;
}

/** The parts of an ORT InferenceSession this module uses. */
export interface OrtSessionLike<T> {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, T>): Promise<Record<string, T>>;
  release(): Promise<void>;
}

/** A session request whose unit data is all in memory (stored units read). */
export type BytesSessionRequest = Omit<SessionRequest, 'externalData' | 'model'> & {
  model: Uint8Array;
  externalData: { path: string; data: Uint8Array }[];
};

/** Session options every runtime passes on to its package's InferenceSession.create. */
export interface OrtOpenOptions {
  graphOptimizationLevel: 'all';
  extra: { session: Record<string, string> };
  /** Outputs to keep where they were computed ('gpu-buffer' on WebGPU: the KV cache's presents). */
  preferredOutputLocation?: Record<string, 'gpu-buffer'>;
}

/** How one package opens a session and builds its own Tensor (the packages' Tensor classes do not mix). */
export interface OrtBinding<T extends OrtTensorLike> {
  tensor(t: HostTensor): T;
  open(req: BytesSessionRequest, options: OrtOpenOptions): Promise<OrtSessionLike<T>>;
  /** The KV cache stays on the GPU between runs (WebGPU). */
  gpuResidentKv?: boolean;
}

function toHost(name: string, t: OrtTensorLike): HostTensor {
  const dims = [...t.dims];
  if (t.type === 'float32' && t.data instanceof Float32Array) return { dtype: 'float32', dims, data: t.data };
  if (t.type === 'int64' && t.data instanceof BigInt64Array) return { dtype: 'int64', dims, data: t.data };
  if (t.type === 'int32' && t.data instanceof Int32Array) return { dtype: 'int32', dims, data: t.data };
  throw new TandemError(
    'ort-output-type',
    `Output '${name}' has type ${t.type}; a stage only returns float32, int64 or int32 tensors.`,
  );
}

const CREATE_HINT: Record<StageBackend, string> = {
  webgpu:
    ' If this device is short of GPU memory, ask the host to re-plan with fewer layers here, or reload with ?backend=wasm.',
  wasm: " The stage may not fit in this page's memory: ask the host to re-plan with fewer layers here.",
  node: ' The stage may not fit in memory: give it fewer layers (--split).',
};

/** Opens a session through `binding` and wraps it as a StageSession. */
export async function openOrtStageSession<T extends OrtTensorLike>(
  binding: OrtBinding<T>,
  request: SessionRequest,
): Promise<StageSession> {
  // the stored units' reads start first; a recipe's graph is built while they are in flight
  const reading = materialiseUnits(request.externalData, request.readCapBytesPerSec);
  reading.catch(() => undefined); // a build error below must not leave this rejection unhandled
  const model = stageModelBytes(
    request.model,
    request.externalData.map((e) => e.path),
  );
  const { externalData, readSeconds } = await reading;
  const req: BytesSessionRequest = { ...request, model, externalData };
  const kv = req.kvCache
    ? new ResidentKvCache<T>(req.kvCache, {
        empty: (dims) => binding.tensor({ dtype: 'float32', dims, data: new Float32Array(0) }),
        dispose: (t) => {
          if (t.location === 'gpu-buffer') t.dispose();
        },
      })
    : null;
  let session: OrtSessionLike<T>;
  try {
    session = await binding.open(req, {
      graphOptimizationLevel: 'all',
      extra: toOrtExtra(req.config),
      // WebGPU: presents stay GPU buffers and come back as the next step's past (no read-back per step)
      ...(kv && binding.gpuResidentKv
        ? {
            preferredOutputLocation: Object.fromEntries(
              [...kv.presentToPast.keys()].map((n) => [n, 'gpu-buffer' as const]),
            ),
          }
        : {}),
    });
  } catch (err) {
    if (err instanceof TandemError) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    throw new TandemError(
      'session-create-failed',
      `Could not create the ${req.backend} ONNX Runtime session: ${detail}.${CREATE_HINT[req.backend]}`,
      { cause: err },
    );
  }
  let lastRun: RunTiming | undefined;
  return {
    backend: req.backend,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    readSeconds,
    get lastRun() {
      return lastRun;
    },
    async run(feeds, options: RunOptions = {}) {
      const startMs = performance.now();
      if (kv && options.newSequence) kv.reset();
      const ortFeeds: Record<string, T> = kv ? kv.feeds() : {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = binding.tensor(t);
      const raw = await session.run(ortFeeds);
      const out = kv ? kv.update(raw) : raw;
      const res: Record<string, HostTensor> = {};
      for (const [name, t] of Object.entries(out)) res[name] = toHost(name, t);
      // the head's sampling counts in the run's compute span: it is the head's last step
      const sampled = options.sample ? sampleHead(res, options.sample) : res;
      lastRun = { startMs, endMs: performance.now() };
      return sampled;
    },
    async release() {
      kv?.disposeAll();
      await session.release();
    },
  };
}

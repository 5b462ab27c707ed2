/// <reference types="@webgpu/types" />
/**
 * onnxruntime-web in the page behind the StageRuntime seam (shards/runtime/stage-runtime.ts). The ONLY
 * client file that imports onnxruntime-web. What is browser-only lives here (the locally served wasm,
 * the WebGPU device, the backend choice); the session itself is wrapped by shards/runtime/ort-session.ts,
 * the same code onnxruntime-node's sessions go through.
 *
 * We import 'onnxruntime-web/webgpu' (the native WebGPU backend, plus wasm) because transformers.js
 * imports the same entry: one ORT instance, one wasm heap in the page. transformers.js points
 * env.wasm.wasmPaths at a CDN when it loads; nothing may download at run time, so `createOrtWebRuntime`
 * takes the locally served wasm URL (the page passes a vite `?url` import, see browser-runtime.ts) and
 * `applyWasmPaths` re-applies it before every session and after transformers.js is imported.
 *
 * Backend choice (`chooseBackend`): WebGPU when the browser has a hardware adapter, else wasm (a software
 * fallback adapter only when ?backend=webgpu asks for WebGPU). A package's dtype does
 * not narrow it: the stage graph casts fp16 weights to fp32 once at session creation (stage-graph.ts
 * `f16Matmul` off), so no shader runs in float16 and an adapter without 'shader-f16' runs fp16 packages
 * too (checked against the fp64 reference on SwiftShader and on an NVIDIA H200 through Dawn, which offers
 * shader-f16 on NVIDIA only when told to: e2e/webgpu-node-check.ts, bench/results/webgpu-node-h200*.json).
 * Where it was offered, float16 matmuls were 7.6e-2 off the reference and faster for one model of three, so fp16
 * weights keep being cast. The choice comes with a sentence saying why, for the UI and the report.
 *
 * In the page's inference worker, wasm sessions run on 'onnxruntime-web/wasm' instead (`cpuWasmUrl`): the
 * CPU-only build without asyncify, which the wasm kernels do not need and which slowed them several
 * times; the worker loads it on its first wasm session, so a WebGPU page never instantiates it.
 *
 * In Node (tests), the same module runs on the wasm backend: leave `wasmUrl` unset and ORT finds its
 * wasm file next to its own bundle.
 */
import * as ortWebGpu from 'onnxruntime-web/webgpu';
import { TandemError } from '../../core/errors.ts';
import type { PackageDType } from '../../shards/manifest.ts';
import type { OpfsUnit } from '../../shards/runtime/opfs-file.ts';
import { openOrtStageSession, prepareOrtStageSession } from '../../shards/runtime/ort-session.ts';
import { ortWebBinding, type OrtWebModule } from '../../shards/runtime/ort-web-binding.ts';
import type {
  ExecutionBackend,
  SessionRequest,
  StageRuntime,
  StageSession,
} from '../../shards/runtime/stage-runtime.ts';

export interface OrtWebOptions {
  /**
   * The onnxruntime-web module to use (default: 'onnxruntime-web/webgpu', the page's). Node tests pass
   * `await import('onnxruntime-web')`, whose Node build runs the same wasm kernels without the asyncify
   * WebGPU glue (that glue can leave Node's event loop empty while V8 still tiers up its 27 MB wasm).
   */
  ort?: OrtWebModule;
  /** URL of ort-wasm-simd-threaded.asyncify.wasm served by our own server (never a CDN). */
  wasmUrl?: string;
  /** wasm threads (default 1: phones throttle, and 2 threads on 2 cores was not faster here). */
  numThreads?: number;
  /**
   * URL of ort-wasm-simd-threaded.wasm (the CPU-only build, no asyncify): with it, and without `ort`,
   * wasm sessions run on 'onnxruntime-web/wasm', loaded on the first one. The asyncify build that WebGPU
   * needs made the tiny model's wasm decode step ~5x slower in Node (p10 13 vs 2.3 ms).
   */
  cpuWasmUrl?: string;
  /**
   * Reads one stored unit of a request loaded in parts (default: on this thread). The inference worker
   * passes its reader thread's (unit-read-thread.ts), so that a part's session is created while the next
   * parts' units are read.
   */
  readOne?: (path: string, data: Blob | OpfsUnit) => Promise<Uint8Array>;
  /** StageRuntime.keepFiles: where `readOne` reads a stage in parts, its files are kept there (default: none). */
  keepFiles?: StageRuntime['keepFiles'];
}

export interface BackendChoice {
  backend: ExecutionBackend;
  /** Why this backend, in words for the UI ("the browser offered no WebGPU adapter. Running on wasm (CPU)."). */
  reason: string;
  /** Adapter description when WebGPU was probed and found. */
  adapter?: {
    vendor: string;
    architecture: string;
    description: string;
    isFallbackAdapter: boolean;
    shaderF16: boolean;
  };
}

let configuredWasmUrl: string | undefined;
let webgpuDevicePinned = false;
/** Why this page's WebGPU is not trusted with stages (the profile's stage check found it wrong); null: trusted. */
let webgpuWrong: string | null = null;

/**
 * The profile's stage check (profiler/stage-check.ts) found this page's WebGPU computing a stage wrong
 * (`reason`), or, with null, found it right: stages then run on wasm unless ?backend=webgpu asks for it.
 */
export function distrustWebGpu(reason: string | null): void {
  webgpuWrong = reason;
}

/** Points ORT at the locally served wasm again (transformers.js overwrites it with a CDN on import). */
export function applyWasmPaths(): void {
  if (configuredWasmUrl !== undefined) ortWebGpu.env.wasm.wasmPaths = { wasm: configuredWasmUrl };
}

/**
 * Which backend a stage of a `dtype` package should use here. `forced` ('webgpu' | 'wasm', e.g. from a
 * ?backend= URL parameter) wins when it can work; forcing WebGPU where it cannot throws 'webgpu-unavailable'.
 */
export async function chooseBackend(
  dtype: PackageDType,
  forced?: ExecutionBackend,
  pinDevice = true,
): Promise<BackendChoice> {
  if (forced === 'wasm') return { backend: 'wasm', reason: 'wasm was requested explicitly.' };
  if (webgpuWrong !== null && forced !== 'webgpu')
    return { backend: 'wasm', reason: `${webgpuWrong} Running on wasm (CPU); ?backend=webgpu uses WebGPU anyway.` };
  const gpu = (globalThis.navigator as (Navigator & { gpu?: GPU }) | undefined)?.gpu;
  const unavailable = (reason: string): BackendChoice => {
    if (forced === 'webgpu')
      throw new TandemError(
        'webgpu-unavailable',
        `WebGPU was requested but ${reason} Open the page in a browser with WebGPU enabled, or drop ?backend=webgpu.`,
      );
    return { backend: 'wasm', reason: `${reason} Running on wasm (CPU).` };
  };
  if (!gpu) return unavailable('this browser has no WebGPU (navigator.gpu is missing).');
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (err) {
    return unavailable(`requesting a WebGPU adapter failed (${(err as Error).message}).`);
  }
  if (!adapter) return unavailable('the browser offered no WebGPU adapter.');
  // GPUAdapter.info is missing in older browsers
  const info = (adapter as Partial<Pick<GPUAdapter, 'info'>>).info;
  const shaderF16 = adapter.features.has('shader-f16');
  const described = {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    description: info?.description ?? '',
    // on GPUAdapterInfo now; on GPUAdapter itself in older browsers
    isFallbackAdapter: Boolean(
      (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ??
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    ),
    shaderF16,
  };
  // A software adapter (SwiftShader) runs shaders on the CPU: through Dawn here it decoded the realistic
  // model at 9.1 s per token against 16 ms on one thread of wasm (bench/results/webgpu-node-swiftshader.json),
  // and a prefill of 32 or more tokens came out wrong (logits 9.0 off the reference in Chromium, right at
  // 31 tokens; right at 256 on an NVIDIA GPU). Only an explicit ?backend=webgpu gets it.
  if (described.isFallbackAdapter && forced !== 'webgpu')
    return {
      backend: 'wasm',
      reason: `the only WebGPU adapter (${described.description || [described.vendor, described.architecture].filter(Boolean).join(' ') || 'unnamed'}) is a software fallback, slower than wasm on this CPU. Running on wasm (CPU); ?backend=webgpu uses it anyway.`,
      adapter: described,
    };
  if (pinDevice) {
    try {
      await pinWebGpuDevice(adapter);
    } catch (err) {
      return { ...unavailable(`creating a WebGPU device failed (${(err as Error).message}).`), adapter: described };
    }
  }
  const what = described.description || described.vendor || 'WebGPU adapter';
  return {
    backend: 'webgpu',
    reason: `WebGPU (${what}${described.isFallbackAdapter ? ', software fallback' : ''})${dtype === 'fp16' ? `; fp16 weights cast to fp32 at load${shaderF16 ? '' : " (no 'shader-f16' needed)"}` : ''}.${described.isFallbackAdapter ? ' Slow, and on SwiftShader wrong from 32-token prompts on.' : ''}${webgpuWrong !== null ? ` Asked for although ${webgpuWrong}` : ''}`,
    adapter: described,
  };
}

/**
 * Gives ORT (this module's instance, e.g. in the inference worker) a WebGPU device with all the adapter's
 * limits: the default limits are smaller (e.g. 128 MiB storage bindings). `adapter` defaults to a fresh one.
 */
export async function pinWebGpuDevice(adapter?: GPUAdapter): Promise<void> {
  if (webgpuDevicePinned) return;
  const gpu = (globalThis.navigator as (Navigator & { gpu?: GPU }) | undefined)?.gpu;
  const a = adapter ?? (await gpu?.requestAdapter()) ?? null;
  if (!a) throw new TandemError('webgpu-unavailable', 'No WebGPU adapter in this context; reload with ?backend=wasm.');
  const requiredLimits: Record<string, number> = {};
  for (const key of [
    'maxBufferSize',
    'maxStorageBufferBindingSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupSizeZ',
    'maxStorageBuffersPerShaderStage',
  ] as const) {
    requiredLimits[key] = a.limits[key];
  }
  const requiredFeatures: GPUFeatureName[] = [];
  for (const f of ['shader-f16', 'timestamp-query', 'subgroups'] as GPUFeatureName[])
    if (a.features.has(f)) requiredFeatures.push(f);
  ortWebGpu.env.webgpu.device = await a.requestDevice({ requiredLimits, requiredFeatures });
  webgpuDevicePinned = true;
}

/** A StageRuntime on onnxruntime-web (sessions wrapped by shards/runtime/ort-session.ts). */
export function createOrtWebRuntime(opts: OrtWebOptions = {}): StageRuntime {
  const ort = opts.ort ?? ortWebGpu;
  configuredWasmUrl = opts.wasmUrl;
  ort.env.wasm.numThreads = opts.numThreads ?? 1;
  const { cpuWasmUrl } = opts;
  let cpuOrt: Promise<OrtWebModule> | null = null;
  const moduleFor = (backend: SessionRequest['backend']): Promise<OrtWebModule> => {
    if (backend !== 'wasm' || opts.ort || cpuWasmUrl === undefined) return Promise.resolve(ort);
    cpuOrt ??= import('onnxruntime-web/wasm').then((m) => {
      m.env.wasm.wasmPaths = { wasm: cpuWasmUrl };
      m.env.wasm.numThreads = opts.numThreads ?? 1;
      return m;
    });
    return cpuOrt;
  };
  return {
    prepareSession: prepareOrtStageSession,
    ...(opts.keepFiles ? { keepFiles: opts.keepFiles } : {}),
    async createSession(req: SessionRequest): Promise<StageSession> {
      applyWasmPaths();
      if (req.backend === 'webgpu' && ort === ortWebGpu) await pinWebGpuDevice();
      const module = await moduleFor(req.backend);
      return openOrtStageSession(
        ortWebBinding(module, { gpuResidentKv: req.backend === 'webgpu' }),
        req,
        // a stage in one part reads on this thread, as it always did: a second thread would only add a hand-over
        req.loadParts && opts.readOne ? { readOne: opts.readOne } : {},
      );
    },
  };
}

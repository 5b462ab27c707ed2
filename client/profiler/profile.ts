/// <reference types="@webgpu/types" />
/**
 * Measures this device: onnxruntime-web session-creation speed on the backend a stage will use here
 * (after warming the runtime, so the page's one-off wasm/WebGPU compile is paid here and not on a
 * request's cold start); compute as a t-sweep of real stage layers on that same runtime, in the page's
 * inference worker (runtime-sweep.ts, layer-probe.ts; a MatMul-block probe if the layers fail, a WGSL or
 * JS matmul only if the runtime fails both, and an issue says so), with the U(t) fit; IndexedDB read
 * speed; link speed to the AP; and the memory budget. The planner's load rate is the effective one,
 * read + session create (session-bench.ts `effectiveLoadRate`); the raw IndexedDB rate stays in the
 * details. Produces the ProfileReport the server plans with (core/protocol.ts) plus the details the page
 * shows and lets the user download. Finishes in seconds; reports progress per step.
 */
import type { ParallelLoad } from './parallel-load.ts';
import { TandemError } from '../../core/errors.ts';
import type { ProfileReport } from '../../core/protocol.ts';
import type { Emulation } from './emulation.ts';
import {
  benchmarkWebGpu,
  requestAdapter,
  summariseAdapter,
  type GpuAdapterSummary,
  type MatmulPoint,
} from './webgpu-matmul.ts';
import { benchmarkCpu } from './cpu-matmul.ts';
import { benchmarkStorage, type StorageBenchResult } from './storage-bench.ts';
import {
  benchmarkStoredUnitRead,
  indexedDbTestUnitStore,
  opfsTestUnitStore,
  type UnitStoreKind,
} from './stored-unit-read.ts';
import { opfsRoot } from '../../shards/runtime/opfs-file.ts';
import { benchmarkSessionCreate, effectiveLoadRate, type SessionBenchResult } from './session-bench.ts';
import { probeLink, type LinkResult } from './link-probe.ts';
import { memoryBudget, type MemoryBudget } from './memory-budget.ts';
import { fitUtilization, type UtilizationFit } from './utilization-fit.ts';
import { benchmarkRuntimeCompute, type RuntimeSweepResult } from './runtime-sweep.ts';
import { checkStagePrefill } from './stage-check.ts';
import { layerSweepProbe, PROFILE_LAYER_PROBE, PROFILE_LAYER_PROBE_LARGE } from './layer-probe.ts';
import type { SweepProbe } from './sweep-probe.ts';
import { matmulSweepProbe, PROFILE_PROBE, PROFILE_PROBE_LARGE } from './stage-probe.ts';
import type { ExecutionBackend, StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import type { WorkerRuntime } from '../runtime/worker-runtime.ts';

export type ProfileStep = 'gpu' | 'compute' | 'storage' | 'runtime' | 'link' | 'memory' | 'done';

export interface ProfileProgress {
  step: ProfileStep;
  /** 0..1 over the whole profile */
  fraction: number;
  text: string;
}

export interface ProfileOptions {
  name: string;
  backend: 'auto' | 'webgpu' | 'wasm';
  emulation: Emulation | null;
  /** Origin of the server with the link probes. */
  origin: string;
  onProgress?: (p: ProfileProgress) => void;
}

export interface ProfileIssue {
  code: string;
  message: string;
}

export interface ProfileDetails {
  measuredAt: string;
  durationSeconds: number;
  backend: 'webgpu' | 'wasm';
  backendReason: string;
  /** where onnxruntime-web runs: the page's inference worker, with this many wasm threads (> 1 only when cross-origin isolated) */
  inference: { where: 'worker'; wasmThreads: number; crossOriginIsolated: boolean } | null;
  emulation: Emulation | null;
  compute: ComputeProfile;
  gpu: GpuAdapterSummary | null;
  /** the storage read (report.readBytesPerSec is the effective load rate, see `load`) */
  storage: StorageRead;
  /** runtime warm-up + session-creation speed; null when it failed (then an issue says why) */
  session: SessionBenchResult | null;
  /** what the planner gets as readBytesPerSec: 1 / (1/storage read + 1/session create) */
  load: {
    effectiveBytesPerSec: number;
    storageReadBytesPerSec: number;
    sessionCreateBytesPerSec: number | null;
    /**
     * Whether reads and session creation run at once here (parallel-load.ts), which decides whether stages
     * load in parts; null where the runtime did not start. The effective rate above does not count on it:
     * the first calibration learns what the overlap saves (the phases' read and create times).
     */
    parallel: ParallelLoad | null;
  };
  link: LinkResult | null;
  memory: MemoryBudget;
  /** Non-fatal problems (e.g. no WebGPU, link probes missing): shown to the user. */
  issues: ProfileIssue[];
}

/** The compute sweep: what ran it, its points, c* and the U(t) fit. */
export interface ComputeProfile {
  /**
   * 'onnxruntime': a probe graph on the page's own runtime (runtime-sweep.ts); the others are
   * stand-ins used only when that failed (an issue says so): a WGSL matmul, or a JS matmul on the main thread.
   */
  measuredWith: 'onnxruntime' | 'wgsl-matmul' | 'js-matmul';
  /** what ran, in words ("onnxruntime-web wasm, 1 thread, in the page's inference worker: ...") */
  method: string;
  points: MatmulPoint[];
  peakFlops: number;
  fit: UtilizationFit;
  /** max relative error of the one check against a JS reference; null when not checked */
  checkError: number | null;
}

/**
 * The storage read as a stage makes it: a unit stored as the shard cache stores it, read by the inference
 * worker (stored-unit-read.ts); where the runtime did not start, IndexedDB read on the main thread.
 */
export type StorageRead = StorageBenchResult & { store: UnitStoreKind | 'indexeddb-main-thread' };

export interface ProfileResult {
  report: ProfileReport;
  details: ProfileDetails;
}

const GPU_SWEEP = [1, 2, 4, 8, 16, 32, 64, 128, 256];
const GPU_SWEEP_LARGE = [1, 4, 16, 64, 128, 256, 512, 1024, 2048];
const CPU_SWEEP = [1, 2, 4, 8, 16, 32, 64, 128];
const STORAGE_BYTES = 16 * 2 ** 20;
/** synthetic stage for the session benchmark: 4 MatMuls of 1024² fp32 = 16 MiB of external data */
const SESSION_DIM = 1024;
const SESSION_LAYERS = 4;
const LINK_BYTES = 2 ** 20;
/** Used only when the server has no link probes (e.g. the vite dev server); flagged as an issue. */
const ASSUMED_LINK_BITS = 100e6;

/** The store the shard cache would keep units in here: OPFS files where it can write them, else IndexedDB. */
async function storageRead(
  runtime: StageRuntime | null,
  backend: ExecutionBackend,
  emulation: Emulation | null,
  issues: ProfileIssue[],
): Promise<StorageRead> {
  if (runtime) {
    const root = opfsRoot();
    const stores = [...(root ? [opfsTestUnitStore(root)] : []), indexedDbTestUnitStore()];
    for (const store of stores) {
      try {
        return await benchmarkStoredUnitRead({
          runtime,
          backend,
          store,
          dim: SESSION_DIM,
          layers: SESSION_LAYERS,
          runs: 3,
          readCapBytesPerSec: emulation?.readBytesPerSecCap,
        });
      } catch (e) {
        const i = issueOf(e);
        issues.push({
          code: i.code,
          message: `Reading a test unit stored as ${store.kind === 'opfs' ? 'an OPFS file' : 'an IndexedDB Blob'} in the inference worker failed (${i.message}).`,
        });
      }
    }
  }
  const idb = await benchmarkStorage({ bytes: STORAGE_BYTES, runs: 3, emulation });
  return { ...idb, store: 'indexeddb-main-thread' };
}

function issueOf(e: unknown): ProfileIssue {
  return e instanceof TandemError ? { code: e.code, message: e.message } : { code: 'unexpected', message: String(e) };
}

/** "onnxruntime-web wasm, 1 thread, in the page's inference worker" */
function runtimeLabel(backend: ExecutionBackend, inference: ProfileDetails['inference']): string {
  const threads = inference?.wasmThreads ?? 1;
  return `onnxruntime-web ${backend}${backend === 'wasm' ? `, ${threads} thread${threads === 1 ? '' : 's'}` : ''}, in the page's inference worker`;
}

/** The stand-in sweeps, used only when the runtime sweep failed: WGSL matmul with an adapter, else JS. */
async function fallbackCompute(
  adapter: GPUAdapter | null,
  emulation: Emulation | null,
  onProgress: (done: number, total: number) => void,
  issues: ProfileIssue[],
): Promise<ComputeProfile> {
  const withFit = (
    measuredWith: ComputeProfile['measuredWith'],
    method: string,
    points: MatmulPoint[],
    checkError: number | null,
  ) => {
    const peakFlops = Math.max(...points.map((p) => p.flops));
    const fit = fitUtilization(points.map((p) => ({ tokens: p.tokens, utilization: p.flops / peakFlops })));
    return { measuredWith, method, points, peakFlops, fit, checkError };
  };
  if (adapter) {
    try {
      let r = await benchmarkWebGpu(adapter, { sweep: GPU_SWEEP, dim: 256, runs: 3, emulation, onProgress });
      // a fast GPU finishes the largest size in a few ms: measure bigger kernels to find its peak
      if (r.points.at(-1)!.seconds < 0.005)
        r = await benchmarkWebGpu(adapter, { sweep: GPU_SWEEP_LARGE, dim: 1024, runs: 5, emulation, onProgress });
      return withFit('wgsl-matmul', r.method, r.points, r.checkError);
    } catch (e) {
      issues.push(issueOf(e));
    }
  }
  const r = await benchmarkCpu({ sweep: CPU_SWEEP, dim: 256, runs: 3, emulation, onProgress });
  return withFit('js-matmul', r.method, r.points, null);
}

export async function profileDevice(options: ProfileOptions): Promise<ProfileResult> {
  const t0 = performance.now();
  const progress = (step: ProfileStep, fraction: number, text: string) =>
    options.onProgress?.({ step, fraction, text });
  const issues: ProfileIssue[] = [];
  const emulation = options.emulation;

  // 1. GPU adapter
  progress('gpu', 0.02, 'Looking for WebGPU');
  let adapter: GPUAdapter | null = null;
  let gpu: GpuAdapterSummary | null = null;
  try {
    adapter = await requestAdapter();
    gpu = await summariseAdapter(adapter);
  } catch (e) {
    issues.push(issueOf(e));
  }

  // 2. the page's runtime: backend choice, warm-up + session creation on the backend a stage will use here
  progress('runtime', 0.04, 'Warming up ONNX Runtime, session creation speed');
  let backend: ExecutionBackend = options.backend === 'wasm' || !adapter ? 'wasm' : 'webgpu';
  let backendReason = '';
  let runtime: WorkerRuntime | null = null;
  let session: SessionBenchResult | null = null;
  let inference: ProfileDetails['inference'] = null;
  try {
    const [{ chooseBackend, distrustWebGpu }, { createBrowserRuntime }] = await Promise.all([
      import('../runtime/ort-web.ts'),
      import('../runtime/browser-runtime.ts'),
    ]);
    runtime = createBrowserRuntime();
    inference = {
      where: 'worker',
      wasmThreads: runtime.numThreads,
      crossOriginIsolated: globalThis.crossOriginIsolated,
    };
    // the same choice StageRunner makes for an fp32 package (the worker pins its own WebGPU device)
    try {
      distrustWebGpu(null); // a new profile checks again
      const choice = await chooseBackend('fp32', options.backend === 'auto' ? undefined : options.backend, false);
      backend = choice.backend;
      backendReason = choice.reason;
    } catch (e) {
      issues.push(issueOf(e));
      backend = 'wasm';
      backendReason = 'WebGPU was asked for but is unavailable: measured the wasm backend';
    }
    // real stage layers at a prompt's size before WebGPU gets stages (stage-check.ts): a wrong one
    // leaves this page's stages to wasm, unless ?backend=webgpu insists
    if (backend === 'webgpu') {
      progress('runtime', 0.05, 'Checking WebGPU on stage layers');
      const wrong = await checkStagePrefill(runtime, 'webgpu');
      if (wrong !== null) {
        if (options.backend === 'webgpu') {
          issues.push({
            code: 'webgpu-wrong-result',
            message: `${wrong} Kept, as ?backend=webgpu asks: this page's answers may be wrong.`,
          });
          backendReason = `${backendReason} ${wrong}`;
        } else {
          distrustWebGpu(wrong);
          backend = 'wasm';
          backendReason = `${wrong} Running on wasm (CPU); ?backend=webgpu uses WebGPU anyway.`;
          issues.push({ code: 'webgpu-wrong-result', message: `${wrong} This page runs its stages on wasm (CPU).` });
        }
      }
    }
    session = await benchmarkSessionCreate({
      runtime,
      backend,
      dim: SESSION_DIM,
      layers: SESSION_LAYERS,
      runs: 3,
      warmup: 1,
    });
  } catch (e) {
    const i = issueOf(e);
    issues.push({
      code: i.code,
      message: `Session-creation benchmark failed (${i.message}); the load rate is the raw storage read only, so cold starts will take longer than planned.`,
    });
  }
  if (!backendReason)
    backendReason =
      backend === 'webgpu'
        ? 'WebGPU adapter available'
        : options.backend === 'wasm'
          ? '?backend=wasm asked for wasm'
          : 'no WebGPU';

  // 3. compute sweep on the runtime itself: real stage layers and a MatMul-block probe, one if the other
  //    fails; a JS / WGSL matmul only if the runtime fails both
  const computeProgress = (done: number, total: number) =>
    progress('compute', 0.15 + 0.5 * (done / total), `Compute sweep ${done}/${total}`);
  let compute: ProfileDetails['compute'] | null = null;
  const rt = runtime;
  if (rt) {
    const sweepOn = (probe: SweepProbe, sweep: readonly number[]) =>
      benchmarkRuntimeCompute({
        runtime: rt,
        backend,
        probe,
        sweep,
        runs: 3,
        emulation,
        runtimeLabel: runtimeLabel(backend, inference),
        // SwiftShader's WebGPU runs these probes at ~0.3 GFLOP/s: stop before a sample takes seconds
        maxSampleSeconds: 0.5,
        budgetSeconds: 15,
        onProgress: computeProgress,
      });
    const probes: { what: string; run: () => Promise<RuntimeSweepResult> }[] = [
      {
        what: 'stage layers',
        run: async () => {
          const { shape, sweep, maxPositions } = PROFILE_LAYER_PROBE;
          const r = await sweepOn(layerSweepProbe(shape, backend, maxPositions), sweep);
          // a fast GPU finishes the largest size in a few ms: measure bigger layers to find its peak
          if (backend !== 'webgpu' || r.points.at(-1)!.seconds >= 0.005) return r;
          const large = PROFILE_LAYER_PROBE_LARGE;
          return sweepOn(layerSweepProbe(large.shape, backend, large.maxPositions), large.sweep);
        },
      },
      {
        what: 'MatMul blocks',
        run: async () => {
          const r = await sweepOn(matmulSweepProbe(PROFILE_PROBE.shape), PROFILE_PROBE.sweep);
          if (backend !== 'webgpu' || r.points.at(-1)!.seconds >= 0.005) return r;
          return sweepOn(matmulSweepProbe(PROFILE_PROBE_LARGE.shape), PROFILE_PROBE_LARGE.sweep);
        },
      },
    ];
    // WebGPU pays per dispatch (a software adapter ~10 ms, and shader compiles per shape): the layers'
    // ~50 kernels a run made three SwiftShader pages miss the e2e's 3-minute profile window, so WebGPU
    // sweeps the MatMul blocks first
    const attempts = backend === 'webgpu' ? [probes[1], probes[0]] : probes;
    for (const attempt of attempts) {
      try {
        const r = await attempt.run();
        compute = {
          measuredWith: 'onnxruntime',
          method: r.method,
          points: r.points,
          peakFlops: r.peakFlops,
          fit: r.fit,
          checkError: r.checkError,
        };
        break;
      } catch (e) {
        const i = issueOf(e);
        issues.push({
          code: 'compute-sweep-fallback',
          message: `The compute sweep of ${attempt.what} on ONNX Runtime failed (${i.code}: ${i.message}); ${attempt === attempts.at(-1) ? 'compute was measured with a stand-in matmul instead, which is not the runtime a stage runs, so compute predictions may be off' : 'trying the other probe graph on the same runtime'}.`,
        });
      }
    }
  }
  if (!compute)
    compute = await fallbackCompute(backend === 'webgpu' ? adapter : null, emulation, computeProgress, issues);
  const { points, peakFlops, fit } = compute;

  // 4. storage
  progress('storage', 0.68, 'Storage read speed');
  // on the runtime only where it created a session for the session benchmark above
  const storage = await storageRead(session ? runtime : null, backend, emulation, issues);
  let parallel: ParallelLoad | null = null;
  if (runtime)
    try {
      parallel = await runtime.measureParallel();
    } catch (e) {
      const i = issueOf(e);
      issues.push({
        code: i.code,
        message: `Measuring whether reads and session creation overlap failed (${i.message}); stages load in one part.`,
      });
    }
  const load = {
    parallel,
    storageReadBytesPerSec: storage.readBytesPerSec,
    sessionCreateBytesPerSec: session?.sessionCreateBytesPerSec ?? null,
    effectiveBytesPerSec: effectiveLoadRate(storage.readBytesPerSec, session?.sessionCreateBytesPerSec ?? null),
  };

  // 5. link
  progress('link', 0.78, 'Link speed to the server');
  let link: LinkResult | null = null;
  try {
    link = await probeLink({ origin: options.origin, bytes: LINK_BYTES, runs: 3, emulation });
  } catch (e) {
    const i = issueOf(e);
    issues.push({ code: i.code, message: `${i.message} The link is assumed to be ${ASSUMED_LINK_BITS / 1e6} Mbit/s.` });
  }

  // 6. memory
  progress('memory', 0.95, 'Memory budget');
  let quota: number | null = null;
  let usage: number | null = null;
  try {
    // navigator.storage is missing in insecure contexts and older browsers
    const est = await (navigator as { storage?: Partial<StorageManager> }).storage?.estimate?.();
    quota = est?.quota ?? null;
    usage = est?.usage ?? null;
  } catch (e) {
    issues.push(issueOf(e));
  }
  const memory = memoryBudget({
    deviceMemoryGiB: (navigator as { deviceMemory?: number }).deviceMemory ?? null,
    storageQuotaBytes: quota,
    storageUsageBytes: usage,
    backend,
    gpuMaxBufferSize: gpu?.limits.maxBufferSize ?? null,
    userAgent: navigator.userAgent,
    maxTouchPoints: (navigator as Partial<Pick<Navigator, 'maxTouchPoints'>>).maxTouchPoints ?? 0,
    emulatedCapBytes: emulation?.memoryBytesCap ?? null,
  });

  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
  const report: ProfileReport = {
    name: options.name,
    userAgent: navigator.userAgent.slice(0, 512),
    backend,
    emulated: emulation ? emulation.label : null,
    peakFlops: clamp(peakFlops, 1e6, 1e16),
    utilA: clamp(fit.a, 1e-6, 1),
    utilB: clamp(fit.b, 1e-9, 10),
    fitRmsError: clamp(fit.rmse, 0, 100),
    sweep: points.map((p) => ({ tokens: p.tokens, flops: p.flops })),
    readBytesPerSec: clamp(load.effectiveBytesPerSec, 1e3, 1e12),
    uplinkBitsPerSec: clamp(link?.uplinkBitsPerSec ?? ASSUMED_LINK_BITS, 1e3, 1e12),
    downlinkBitsPerSec: clamp(link?.downlinkBitsPerSec ?? ASSUMED_LINK_BITS, 1e3, 1e12),
    memoryBytes: clamp(memory.bytes, 2 ** 20, 2 ** 42),
    gpu,
  };
  const details: ProfileDetails = {
    measuredAt: new Date().toISOString(),
    durationSeconds: (performance.now() - t0) / 1000,
    backend,
    backendReason,
    inference,
    emulation,
    compute,
    gpu,
    storage,
    session,
    load,
    link,
    memory,
    issues,
  };
  progress('done', 1, `Profiled in ${details.durationSeconds.toFixed(1)} s`);
  return { report, details };
}

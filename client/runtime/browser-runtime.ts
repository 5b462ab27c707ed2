/// <reference types="vite/client" />
/**
 * The page's StageRuntime: onnxruntime-web in ONE dedicated inference worker per page (inference-worker.ts),
 * shared by the profiler's warm-up and the stage, so the one-off wasm compile paid while profiling
 * is not paid again by a request. The `?url` import makes vite copy ORT's wasm binary into the build and
 * give us its URL, so ORT never reaches for a CDN. Browser-only (vite resolves `?url` and the worker URL);
 * Node code uses createOrtWebRuntime() directly.
 */
import asyncifyWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import cpuWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import { createWorkerRuntime, type WorkerRuntime } from './worker-runtime.ts';
import { WorkerStages } from './worker-stage.ts';

/** Absolute URL of the locally served ORT wasm binary. */
export const ORT_WASM_URL: string = new URL(asyncifyWasmUrl, location.href).href;
/** Absolute URL of the CPU-only ORT wasm binary (no asyncify): the worker's wasm sessions run on it. */
export const ORT_CPU_WASM_URL: string = new URL(cpuWasmUrl, location.href).href;

/**
 * wasm threads for this page: only where the page is cross-origin isolated (SharedArrayBuffer), and at
 * most half the cores, leaving the rest to the main thread, the transport and other tabs (2 threads on
 * 2 cores were not faster here).
 */
export function inferenceThreads(): number {
  if (!globalThis.crossOriginIsolated) return 1;
  return Math.max(1, Math.min(4, Math.floor((navigator.hardwareConcurrency || 2) / 2)));
}

let shared: WorkerRuntime | null = null;
let worker: Worker | null = null;
let stages: WorkerStages | null = null;

function inferenceWorker(): Worker {
  worker ??= new Worker(new URL('./inference-worker.ts', import.meta.url), {
    type: 'module',
    name: 'tandem-inference',
  });
  return worker;
}

export function createBrowserRuntime(): WorkerRuntime {
  if (shared) return shared;
  const w = inferenceWorker();
  const runtime = createWorkerRuntime(w, {
    wasmUrl: ORT_WASM_URL,
    cpuWasmUrl: ORT_CPU_WASM_URL,
    numThreads: inferenceThreads(),
  });
  w.addEventListener('error', (e) => runtime.fail(e.message || 'worker error'));
  shared = runtime;
  return runtime;
}

/** The stages that run in the same worker as the sessions (worker-stage.ts); the runtime is configured first. */
export function browserWorkerStages(): WorkerStages {
  createBrowserRuntime();
  if (!stages) {
    const w = inferenceWorker();
    const created = new WorkerStages(w);
    w.addEventListener('error', (e) => created.fail(e.message || 'worker error'));
    stages = created;
  }
  return stages;
}

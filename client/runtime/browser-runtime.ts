/// <reference types="vite/client" />
/**
 * The page's StageRuntime: onnxruntime-web with its wasm binary served by our own server. The `?url`
 * import makes vite copy the file into the build and give us its URL, so ORT never reaches for a CDN.
 * Browser-only (vite resolves `?url`); Node code uses createOrtWebRuntime() without a URL.
 */
import asyncifyWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import { createOrtWebRuntime } from './ort-web.ts';
import type { StageRuntime } from './stage-runtime.ts';

/** Absolute URL of the locally served ORT wasm binary. */
export const ORT_WASM_URL: string = new URL(asyncifyWasmUrl, location.href).href;

export function createBrowserRuntime(numThreads = 1): StageRuntime {
  return createOrtWebRuntime({ wasmUrl: ORT_WASM_URL, numThreads });
}

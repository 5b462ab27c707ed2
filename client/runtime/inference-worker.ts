/**
 * Entry of the page's dedicated inference worker (started by browser-runtime.ts): onnxruntime-web
 * sessions, their runs and KV caches live here, so a cold start or a long prefill never blocks the main
 * thread's transport, heartbeats and UI.
 */
import { serveInference } from './inference-worker-host.ts';
import { createOrtWebRuntime } from './ort-web.ts';
import type { MessagePort, WorkerReply, WorkerRequest } from './worker-protocol.ts';

const scope = globalThis as unknown as MessagePort<WorkerReply, WorkerRequest>;
serveInference(scope, ({ wasmUrl, cpuWasmUrl, numThreads }) =>
  createOrtWebRuntime({ wasmUrl: wasmUrl ?? undefined, cpuWasmUrl: cpuWasmUrl ?? undefined, numThreads }),
);

/**
 * For the profiler's tests: onnxruntime-web's wasm kernels behind the inference-worker protocol (the
 * page's path), served over a MessageChannel in this process instead of a Worker.
 */
import { afterAll } from 'vitest';
import { serveInference } from '../runtime/inference-worker-host.ts';
import { createOrtWebRuntime } from '../runtime/ort-web.ts';
import { createWorkerRuntime, type WorkerRuntime } from '../runtime/worker-runtime.ts';

/** A one-thread worker runtime on wasm; its channel closes after the calling test file's tests. */
export async function wasmWorkerRuntime(): Promise<WorkerRuntime> {
  const channel = new MessageChannel();
  const ortWeb = await import('onnxruntime-web');
  serveInference(channel.port2, ({ numThreads }) => createOrtWebRuntime({ ort: ortWeb, numThreads }));
  const runtime = createWorkerRuntime(channel.port1, { wasmUrl: null, numThreads: 1 });
  channel.port1.start();
  channel.port2.start();
  afterAll(() => channel.port1.close());
  return runtime;
}

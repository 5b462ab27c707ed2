/**
 * Messages between the page's main thread and its inference worker (inference-worker.ts), where
 * onnxruntime-web lives: session creation, runs and the KV cache. The main thread keeps the transport,
 * heartbeats and UI. Every message is one member of a discriminated union, so `switch (msg.type)`
 * narrows it and ends in `assertNever`. Calls carry a `callId`; each gets exactly one reply.
 */
import type { HostTensor, RunOptions, SessionRequest, StageBackend } from '../../shards/runtime/stage-runtime.ts';
import type { ParallelSample } from '../profiler/parallel-load.ts';

/** main thread -> worker */
export type WorkerRequest =
  | {
      type: 'configure';
      wasmUrl: string | null;
      /** the CPU-only (non-asyncify) wasm build's binary, for wasm sessions; null: wasmUrl's build for both */
      cpuWasmUrl: string | null;
      numThreads: number;
    }
  | { type: 'create'; callId: number; request: SessionRequest }
  | { type: 'run'; callId: number; sessionId: number; feeds: Record<string, HostTensor>; options: RunOptions }
  | { type: 'release'; callId: number; sessionId: number }
  /** how far the worker's thread and its unit reader thread run at once (profiler/parallel-load.ts) */
  | { type: 'measure-parallel'; callId: number; rounds: number; repeats: number };

/** worker -> main thread */
export type WorkerReply =
  | {
      type: 'created';
      callId: number;
      sessionId: number;
      backend: StageBackend;
      inputNames: string[];
      outputNames: string[];
      /** seconds the worker spent reading the request's Blob unit data (storage), before creating */
      readSeconds: number;
      /** how many sessions the stage was opened as (SessionRequest.loadParts) */
      parts: number;
    }
  | {
      type: 'ran';
      callId: number;
      outputs: Record<string, HostTensor>;
      /**
       * The run's compute span in the worker, as epoch ms (performance.timeOrigin + now: the worker's
       * performance.now() has another origin than the page's); absent when the runtime cannot tell.
       */
      computed?: { startEpochMs: number; endEpochMs: number };
    }
  | { type: 'released'; callId: number }
  | { type: 'parallel'; callId: number; samples: ParallelSample[]; reason?: string }
  | { type: 'failed'; callId: number; code: string; message: string };

/** The two ends of the channel: a Worker and the worker's global scope both fit this shape. */
export interface MessagePort<Out, In> {
  postMessage(message: Out, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<In>) => void): void;
}

export function assertNever(x: never): never {
  throw new Error(`unexpected message ${JSON.stringify(x)}`);
}

/**
 * The ArrayBuffers of `arrays` that can move instead of being copied: each must be a plain ArrayBuffer
 * that the view covers entirely (never a view into a larger buffer, e.g. a wasm heap, which must not be
 * detached), listed once.
 */
export function transferables(arrays: Iterable<ArrayBufferView>): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const a of arrays) {
    const b = a.buffer;
    if (b instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === b.byteLength && b.byteLength > 0) out.add(b);
  }
  return [...out];
}

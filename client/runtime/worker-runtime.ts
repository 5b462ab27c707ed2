/**
 * A StageRuntime whose sessions live in the inference worker (worker-protocol.ts). Tensors cross as
 * transferred buffers where the caller allows it: run inputs are copied once by postMessage (the
 * caller may still hold them), run outputs move, and a session's model and weight bytes move when the
 * request says `handOver` (a stage's freshly read units), else they are copied.
 */
import { TandemError } from '../../core/errors.ts';
import type {
  HostTensor,
  RunOptions,
  RunTiming,
  SessionRequest,
  StageRuntime,
  StageSession,
} from '../../shards/runtime/stage-runtime.ts';
import { parallelLoad, PARALLEL_REPEATS, PARALLEL_SPIN_ROUNDS, type ParallelLoad } from '../profiler/parallel-load.ts';
import { isStageReply } from './stage-worker-protocol.ts';
import { transferables, type MessagePort, type WorkerReply, type WorkerRequest } from './worker-protocol.ts';

export interface WorkerRuntimeOptions {
  wasmUrl: string | null;
  /** the CPU-only wasm build's binary for wasm sessions (browser-runtime.ts); default null: wasmUrl's build */
  cpuWasmUrl?: string | null;
  numThreads: number;
}

type Pending = { resolve: (r: WorkerReply) => void; reject: (e: TandemError) => void };

export interface WorkerRuntime extends StageRuntime {
  readonly numThreads: number;
  /** How far the worker's thread and its unit reader thread run at once (profiler/parallel-load.ts). */
  measureParallel(): Promise<ParallelLoad>;
  /** Rejects every pending call (the worker died). */
  fail(message: string): void;
}

export function createWorkerRuntime(
  port: MessagePort<WorkerRequest, WorkerReply>,
  opts: WorkerRuntimeOptions,
): WorkerRuntime {
  const pending = new Map<number, Pending>();
  let nextCall = 1;
  let dead: TandemError | null = null;

  port.addEventListener('message', (e) => {
    const reply = e.data;
    if (isStageReply(reply)) return; // the stage's (worker-stage.ts), on the same worker
    const p = pending.get(reply.callId);
    if (!p) return;
    pending.delete(reply.callId);
    if (reply.type === 'failed') p.reject(new TandemError(reply.code, reply.message));
    else p.resolve(reply);
  });
  port.postMessage(
    { type: 'configure', wasmUrl: opts.wasmUrl, cpuWasmUrl: opts.cpuWasmUrl ?? null, numThreads: opts.numThreads },
    [],
  );

  const call = (make: (callId: number) => WorkerRequest, transfer: Transferable[] = []): Promise<WorkerReply> => {
    if (dead) return Promise.reject(dead);
    const callId = nextCall++;
    return new Promise<WorkerReply>((resolve, reject) => {
      pending.set(callId, { resolve, reject });
      port.postMessage(make(callId), transfer);
    });
  };
  const unexpected = (r: WorkerReply, wanted: string) =>
    new TandemError(
      'inference-worker-protocol',
      `The inference worker answered '${r.type}' to a ${wanted} call; reload the page.`,
    );

  return {
    numThreads: opts.numThreads,
    fail(message) {
      dead = new TandemError('inference-worker-failed', `The inference worker stopped (${message}); reload the page.`);
      for (const p of pending.values()) p.reject(dead);
      pending.clear();
    },
    async measureParallel() {
      const r = await call((callId) => ({
        type: 'measure-parallel',
        callId,
        rounds: PARALLEL_SPIN_ROUNDS,
        repeats: PARALLEL_REPEATS,
      }));
      if (r.type !== 'parallel') throw unexpected(r, 'measure-parallel');
      return parallelLoad(r.samples, r.reason);
    },
    async createSession(req: SessionRequest): Promise<StageSession> {
      // Blobs are posted as handles (no bytes cross); the worker reads them
      const bytes = req.externalData.flatMap((e) => (e.data instanceof Uint8Array ? [e.data] : []));
      const transfer = req.handOver
        ? transferables(req.model instanceof Uint8Array ? [req.model, ...bytes] : bytes)
        : [];
      const r = await call((callId) => ({ type: 'create', callId, request: req }), transfer);
      if (r.type !== 'created') throw unexpected(r, 'create');
      const { sessionId } = r;
      let lastRun: RunTiming | undefined;
      return {
        backend: r.backend,
        inputNames: r.inputNames,
        outputNames: r.outputNames,
        readSeconds: r.readSeconds,
        parts: r.parts,
        get lastRun() {
          return lastRun;
        },
        async run(feeds: Record<string, HostTensor>, options: RunOptions = {}) {
          const posted = performance.now();
          const out = await call((callId) => ({ type: 'run', callId, sessionId, feeds, options }));
          if (out.type !== 'ran') throw unexpected(out, 'run');
          lastRun = out.computed ? workerSpan(out.computed, posted, performance.now()) : undefined;
          return out.outputs;
        },
        async release() {
          const out = await call((callId) => ({ type: 'release', callId, sessionId }));
          if (out.type !== 'released') throw unexpected(out, 'release');
        },
      };
    },
  };
}

/**
 * The worker's compute span on this thread's clock: epoch ms minus this thread's time origin, kept
 * inside [posted, replied] (the two origins may be read from clocks a little apart; the compute cannot
 * have started before the run was posted nor ended after its reply arrived).
 */
export function workerSpan(
  computed: { startEpochMs: number; endEpochMs: number },
  posted: number,
  replied: number,
): RunTiming {
  const clamp = (x: number, lo: number) => Math.min(replied, Math.max(lo, x));
  const startMs = clamp(computed.startEpochMs - performance.timeOrigin, posted);
  return { startMs, endMs: clamp(computed.endEpochMs - performance.timeOrigin, startMs) };
}

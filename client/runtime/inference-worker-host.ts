/**
 * The worker side of worker-protocol.ts: serves session creation, runs and releases on a StageRuntime
 * (onnxruntime-web) one call at a time, in arrival order (onnxruntime-web's wasm backend is not meant
 * for overlapping calls). Outputs move back to the main thread as transferred buffers. Takes its port and
 * runtime factory as arguments so Node tests can drive it over a MessageChannel.
 */
import { TandemError } from '../../core/errors.ts';
import type { StageRuntime, StageSession } from '../../shards/runtime/stage-runtime.ts';
import {
  assertNever,
  transferables,
  type MessagePort,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.ts';
import { isStageRequest } from './stage-worker-protocol.ts';
import { spin } from './unit-read-thread.ts';
import type { ParallelSample } from '../profiler/parallel-load.ts';

function timed(f: () => void): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

export function serveInference(
  port: MessagePort<WorkerReply, WorkerRequest>,
  makeRuntime: (cfg: { wasmUrl: string | null; cpuWasmUrl: string | null; numThreads: number }) => StageRuntime,
  /** the worker's second thread (its unit reader), for 'measure-parallel'; null where it has none */
  secondThread: () => { spin(rounds: number): Promise<number> } | null = () => null,
): void {
  let runtime: StageRuntime | null = null;
  const sessions = new Map<number, StageSession>();
  let nextSessionId = 1;
  let queue: Promise<void> = Promise.resolve();

  const handle = async (msg: WorkerRequest): Promise<void> => {
    if (msg.type === 'configure') {
      runtime = makeRuntime({ wasmUrl: msg.wasmUrl, cpuWasmUrl: msg.cpuWasmUrl, numThreads: msg.numThreads });
      return;
    }
    const reply = (r: WorkerReply, transfer: Transferable[] = []) => port.postMessage(r, transfer);
    try {
      if (!runtime)
        throw new TandemError(
          'inference-worker-unconfigured',
          'The inference worker got a call before its configuration; this is a bug in the page.',
        );
      switch (msg.type) {
        case 'create': {
          const session = await runtime.createSession(msg.request);
          const sessionId = nextSessionId++;
          sessions.set(sessionId, session);
          reply({
            type: 'created',
            callId: msg.callId,
            sessionId,
            backend: session.backend,
            inputNames: [...session.inputNames],
            outputNames: [...session.outputNames],
            readSeconds: session.readSeconds ?? 0,
            parts: session.parts ?? 1,
          });
          return;
        }
        case 'run': {
          const session = sessionOf(msg.sessionId);
          const outputs = await session.run(msg.feeds, msg.options);
          const span = session.lastRun;
          const origin = performance.timeOrigin;
          reply(
            {
              type: 'ran',
              callId: msg.callId,
              outputs,
              ...(span ? { computed: { startEpochMs: origin + span.startMs, endEpochMs: origin + span.endMs } } : {}),
            },
            transferables(Object.values(outputs).map((t) => t.data)),
          );
          return;
        }
        case 'release': {
          const s = sessions.get(msg.sessionId);
          sessions.delete(msg.sessionId);
          await s?.release();
          reply({ type: 'released', callId: msg.callId });
          return;
        }
        case 'measure-parallel': {
          const other = secondThread();
          if (!other) {
            reply({ type: 'parallel', callId: msg.callId, samples: [], reason: 'no second thread in this browser' });
            return;
          }
          await other.spin(msg.rounds); // the thread starts, and its code is compiled, before anything is timed
          spin(msg.rounds);
          const samples: ParallelSample[] = [];
          for (let r = 0; r < msg.repeats; r++) {
            const here = timed(() => spin(msg.rounds));
            const there = await other.spin(msg.rounds);
            const t0 = performance.now();
            const both = other.spin(msg.rounds);
            spin(msg.rounds);
            await both;
            samples.push({ aloneMs: [here, there], togetherMs: performance.now() - t0 });
          }
          reply({ type: 'parallel', callId: msg.callId, samples });
          return;
        }
        default:
          assertNever(msg);
      }
    } catch (err) {
      const e =
        err instanceof TandemError
          ? err
          : new TandemError(
              'inference-worker-failed',
              `The inference worker failed: ${err instanceof Error ? err.message : String(err)}`,
            );
      reply({ type: 'failed', callId: msg.callId, code: e.code, message: e.message });
    }
  };

  const sessionOf = (id: number): StageSession => {
    const s = sessions.get(id);
    if (!s) throw new TandemError('session-released', `Session ${id} was released; create it again.`);
    return s;
  };

  port.addEventListener('message', (e) => {
    const msg = e.data;
    if (isStageRequest(msg)) return; // the stage host's (stage-worker-host.ts), on the same worker
    queue = queue.then(() => handle(msg));
  });
}

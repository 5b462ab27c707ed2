/**
 * One runtime call at a time: onnxruntime-web's wasm backend is not meant for overlapping calls, and in
 * the inference worker two callers share it: the session calls of the main thread (profile probes, the
 * kernel warm-up) and the stage that runs there. Calls run in arrival order.
 */
import type { StageRuntime, StageSession } from '../../shards/runtime/stage-runtime.ts';

export function serialRuntime(inner: StageRuntime): StageRuntime {
  let tail: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(call: () => Promise<T>): Promise<T> => {
    const turn = tail.then(call, call);
    tail = turn.catch(() => undefined);
    return turn;
  };
  return {
    async createSession(req) {
      const session = await inTurn(() => inner.createSession(req));
      const serial: StageSession = {
        get backend() {
          return session.backend;
        },
        get inputNames() {
          return session.inputNames;
        },
        get outputNames() {
          return session.outputNames;
        },
        get readSeconds() {
          return session.readSeconds;
        },
        get lastRun() {
          return session.lastRun;
        },
        run: (feeds, options) => inTurn(() => session.run(feeds, options)),
        release: () => inTurn(() => session.release()),
      };
      return serial;
    },
  };
}

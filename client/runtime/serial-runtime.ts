/**
 * One runtime call at a time: onnxruntime-web's wasm backend is not meant for overlapping calls, and in
 * the inference worker two callers share it: the session calls of the main thread (profile probes, the
 * kernel warm-up) and the stage that runs there. Calls run in arrival order.
 */
import type { StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import { wrappedSession } from './wrapped-session.ts';

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
      return wrappedSession(session, {
        run: (feeds, options) => inTurn(() => session.run(feeds, options)),
        release: () => inTurn(() => session.release()),
      });
    },
    // plain JS and file handles, no ONNX Runtime call: nothing to wait for
    ...(inner.prepareSession ? { prepareSession: inner.prepareSession.bind(inner) } : {}),
    ...(inner.keepFiles ? { keepFiles: inner.keepFiles.bind(inner) } : {}),
  };
}

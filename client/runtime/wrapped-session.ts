/**
 * A StageSession that is `inner` except for its runs: what the runtime wrappers (emulated-runtime.ts,
 * serial-runtime.ts) change, while the session's names, backend and read time stay the inner one's.
 */
import type { RunTiming, StageSession } from '../../shards/runtime/stage-runtime.ts';

export interface SessionOverrides {
  run: StageSession['run'];
  release: StageSession['release'];
  /** the last run's compute span (default: the inner session's) */
  lastRun?: () => RunTiming | undefined;
}

export function wrappedSession(inner: StageSession, own: SessionOverrides): StageSession {
  return {
    get backend() {
      return inner.backend;
    },
    get inputNames() {
      return inner.inputNames;
    },
    get outputNames() {
      return inner.outputNames;
    },
    get readSeconds() {
      return inner.readSeconds;
    },
    get parts() {
      return inner.parts;
    },
    get lastRun() {
      return own.lastRun ? own.lastRun() : inner.lastRun;
    },
    run: own.run,
    release: own.release,
  };
}

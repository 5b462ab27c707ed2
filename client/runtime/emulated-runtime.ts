/**
 * Device emulation for the stage itself: wraps a StageRuntime so that every session run takes
 * `computeSlowdown` times as long as it really did (the page sleeps (factor - 1) x the measured run
 * time after each run). With this, an emulated page is as slow in the pipeline as its profile says,
 * so predicted and measured timelines stay comparable. The emulated storage read cap goes with each
 * session request: the runtime reads the stage's unit Blobs in its worker and keeps that read to it
 * (reads made on the main thread are capped in ShardCache.readUnit).
 */
import type { Emulation } from '../profiler/emulation.ts';
import { computeStretch } from '../profiler/emulation.ts';
import { sleepSeconds } from '../profiler/timing.ts';
import type { SessionRequest, StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import { wrappedSession } from './wrapped-session.ts';

export function emulatedRuntime(inner: StageRuntime, emulation: Emulation | null): StageRuntime {
  const readCap = emulation?.readBytesPerSecCap;
  if (!emulation || (emulation.computeSlowdown <= 1 && !readCap)) return inner;
  const capped = (req: SessionRequest): SessionRequest => (readCap ? { ...req, readCapBytesPerSec: readCap } : req);
  const prepare = {
    ...(inner.prepareSession ? { prepareSession: inner.prepareSession.bind(inner) } : {}),
    ...(inner.keepFiles ? { keepFiles: inner.keepFiles.bind(inner) } : {}),
  };
  if (emulation.computeSlowdown <= 1) return { createSession: (req) => inner.createSession(capped(req)), ...prepare };
  return {
    ...prepare,
    async createSession(req) {
      const session = await inner.createSession(capped(req));
      let stretchedEnd: number | null = null;
      // the stretch is emulated compute: it counts in the run's compute span
      return wrappedSession(session, {
        lastRun: () => {
          const span = session.lastRun;
          return span && stretchedEnd !== null ? { startMs: span.startMs, endMs: stretchedEnd } : undefined;
        },
        async run(feeds, options) {
          const t0 = performance.now();
          const out = await session.run(feeds, options);
          await sleepSeconds(computeStretch(emulation, (performance.now() - t0) / 1000));
          stretchedEnd = performance.now();
          return out;
        },
        release: () => session.release(),
      });
    },
  };
}

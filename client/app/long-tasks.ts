/**
 * Main-thread long tasks (PerformanceObserver 'longtask': tasks over 50 ms) since the page loaded, for
 * the bench's "no main-thread task longer than 50 ms during a cold start" figure. Times are
 * performance.now() ms of this page.
 *
 * A 'longtask' entry says nothing about what ran. Where the browser has the Long Animation Frames API
 * ('long-animation-frame', Chromium 123+), each task is given the scripts of the frame that holds it
 * (their entry points: "Worker.onmessage", "TimerHandler:setTimeout", with function and file) and the
 * frame's style/layout/paint time, so a bench can say which code a long task was.
 */
export interface LongTask {
  startMs: number;
  durationMs: number;
  /** The frame's longest scripts (at most MAX_SCRIPTS), where the browser attributes them. */
  scripts?: LongTaskScript[];
  /** The frame's rendering (style, layout, paint) ms, where attributed. */
  renderMs?: number;
}

export interface LongTaskScript {
  /** Entry point and function, e.g. "Worker.onmessage onMessage @worker-stage.js". */
  what: string;
  durationMs: number;
}

const MAX_KEPT = 1000;
const MAX_SCRIPTS = 3;

/** The parts of a PerformanceLongAnimationFrameTiming this module reads (not in TypeScript's DOM lib yet). */
interface AnimationFrameEntry {
  startTime: number;
  duration: number;
  renderStart: number;
  scripts: readonly {
    invoker: string;
    sourceFunctionName: string;
    sourceURL: string;
    duration: number;
  }[];
}

function supports(type: string): boolean {
  return (
    typeof PerformanceObserver !== 'undefined' &&
    ((PerformanceObserver as { supportedEntryTypes?: readonly string[] }).supportedEntryTypes?.includes(type) ?? false)
  );
}

function scriptsOf(frame: AnimationFrameEntry): LongTaskScript[] {
  return [...frame.scripts]
    .sort((a, b) => b.duration - a.duration)
    .slice(0, MAX_SCRIPTS)
    .map((s) => {
      const file = s.sourceURL.split('/').pop()?.split('?')[0] ?? '';
      const what = [s.invoker, s.sourceFunctionName, file ? `@${file}` : ''].filter(Boolean).join(' ');
      return { what, durationMs: Math.round(s.duration) };
    });
}

export function observeLongTasks(): () => LongTask[] {
  const tasks: LongTask[] = [];
  if (!supports('longtask')) return () => [];
  const frames: AnimationFrameEntry[] = [];
  // a task belongs to the frame whose span holds its start (frames can arrive before or after it)
  const attribute = (t: LongTask) => {
    if (t.scripts) return;
    const f = frames.find((f) => t.startMs >= f.startTime - 1 && t.startMs <= f.startTime + f.duration);
    if (!f) return;
    t.scripts = scriptsOf(f);
    if (f.renderStart > 0) t.renderMs = Math.round(f.startTime + f.duration - f.renderStart);
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const t: LongTask = { startMs: e.startTime, durationMs: e.duration };
      attribute(t);
      tasks.push(t);
      if (tasks.length > MAX_KEPT) tasks.shift();
    }
  }).observe({ type: 'longtask', buffered: true });
  if (supports('long-animation-frame'))
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        frames.push(e as unknown as AnimationFrameEntry);
        if (frames.length > MAX_KEPT) frames.shift();
      }
      for (const t of tasks) attribute(t);
    }).observe({ type: 'long-animation-frame', buffered: true });
  return () => tasks.map((t) => ({ ...t, ...(t.scripts ? { scripts: t.scripts.map((s) => ({ ...s })) } : {}) }));
}

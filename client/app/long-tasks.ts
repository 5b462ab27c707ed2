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
/** Frames kept to match tasks that arrive after them (a task is reported right after its frame). */
const MAX_FRAMES = 50;

/** The parts of a PerformanceLongAnimationFrameTiming this module reads (not in TypeScript's DOM lib yet). */
export interface AnimationFrameEntry {
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

/**
 * The kept tasks and their attribution. A task belongs to the frame whose span holds its start. Either
 * entry can arrive first, both in time order: each new one is matched against the newest of the other
 * kind only, so an observer callback costs a few comparisons, not a scan of everything kept.
 */
export class LongTaskLog {
  private readonly tasks: LongTask[] = [];
  private readonly frames: AnimationFrameEntry[] = [];

  addTask(startMs: number, durationMs: number): void {
    const t: LongTask = { startMs, durationMs };
    const frames = this.frames;
    for (let i = frames.length - 1; i >= 0 && frames[i].startTime + frames[i].duration >= t.startMs; i--)
      if (holds(frames[i], t)) {
        attribute(t, frames[i]);
        break;
      }
    this.tasks.push(t);
    if (this.tasks.length > MAX_KEPT) this.tasks.shift();
  }

  addFrame(f: AnimationFrameEntry): void {
    this.frames.push(f);
    if (this.frames.length > MAX_FRAMES) this.frames.shift();
    const tasks = this.tasks;
    for (let i = tasks.length - 1; i >= 0 && tasks[i].startMs >= f.startTime - 1; i--)
      if (!tasks[i].scripts && holds(f, tasks[i])) attribute(tasks[i], f);
  }

  /** Copies of the kept tasks, oldest first. */
  list(): LongTask[] {
    return this.tasks.map((t) => ({ ...t, ...(t.scripts ? { scripts: t.scripts.map((s) => ({ ...s })) } : {}) }));
  }
}

function holds(f: AnimationFrameEntry, t: LongTask): boolean {
  return t.startMs >= f.startTime - 1 && t.startMs <= f.startTime + f.duration;
}

function attribute(t: LongTask, f: AnimationFrameEntry): void {
  t.scripts = scriptsOf(f);
  if (f.renderStart > 0) t.renderMs = Math.round(f.startTime + f.duration - f.renderStart);
}

export function observeLongTasks(): () => LongTask[] {
  if (!supports('longtask')) return () => [];
  const log = new LongTaskLog();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) log.addTask(e.startTime, e.duration);
  }).observe({ type: 'longtask', buffered: true });
  if (supports('long-animation-frame'))
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) log.addFrame(e as unknown as AnimationFrameEntry);
    }).observe({ type: 'long-animation-frame', buffered: true });
  return () => log.list();
}

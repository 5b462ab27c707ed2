/**
 * Main-thread long tasks (PerformanceObserver 'longtask': tasks over 50 ms) since the page loaded, for
 * the bench's "no main-thread task longer than 50 ms during a cold start" figure. Times are
 * performance.now() ms of this page.
 */
export interface LongTask {
  startMs: number;
  durationMs: number;
}

const MAX_KEPT = 1000;

export function observeLongTasks(): () => LongTask[] {
  const tasks: LongTask[] = [];
  if (
    typeof PerformanceObserver === 'undefined' ||
    !(PerformanceObserver as { supportedEntryTypes?: readonly string[] }).supportedEntryTypes?.includes('longtask')
  )
    return () => [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      tasks.push({ startMs: e.startTime, durationMs: e.duration });
      if (tasks.length > MAX_KEPT) tasks.shift();
    }
  }).observe({ type: 'longtask', buffered: true });
  return () => tasks.map((t) => ({ ...t }));
}

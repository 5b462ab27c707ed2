/**
 * Where a Chrome trace's time goes, per thread (pure, no I/O): from the trace events of a recording
 * (Chrome's JSON trace format: ph 'X' complete events with ts/dur in µs, 'M' thread names, and the V8
 * sampling profiler's 'ProfileChunk' events), per renderer thread of interest (each page's main thread
 * 'CrRendererMain' and its workers 'DedicatedWorker thread'):
 *   - busyMs: the thread's top-level tasks ('RunTask' and the like, category 'toplevel'), summed;
 *   - byEvent: self time per trace event name (a 'FunctionCall' refined by its function, an 'EventDispatch'
 *     by its event type), nested events subtracted from their parents;
 *   - byFunction: self time per JavaScript function from the sampling profiler (samples x interval).
 * Figures are ms over the recorded window; divide by the tokens of the window for per-token costs.
 */

export interface TraceEvent {
  name: string;
  cat?: string;
  ph: string;
  ts?: number;
  dur?: number;
  /** thread (CPU) time of a complete event, µs */
  tdur?: number;
  pid: number;
  tid: number;
  id?: string;
  args?: Record<string, unknown>;
}

export interface ThreadSummary {
  pid: number;
  tid: number;
  thread: string;
  /** sum of top-level task durations, ms */
  busyMs: number;
  tasks: number;
  /** tasks longer than 50 ms */
  longTasks: number;
  /** each task longer than 50 ms, longest first: its start (ms from the first recorded event) and what filled it */
  longTaskList: LongTaskDetail[];
  /** self time per event name, ms, largest first */
  byEvent: { name: string; ms: number; count: number }[];
  /** self time per JS function (sampling profiler), ms, largest first */
  byFunction: { name: string; ms: number }[];
}

export interface LongTaskDetail {
  startMs: number;
  durationMs: number;
  /** the thread's CPU time in the task (trace 'tdur'), ms: far below durationMs when the thread waited for a core */
  cpuMs: number | null;
  /** self time per event name inside the task, ms, largest first */
  byEvent: { name: string; ms: number }[];
}

const LONG_TASK_US = 50_000;

const TOP_LEVEL = new Set(['RunTask', 'ThreadControllerImpl::RunTask', 'ThreadPool_RunTask']);
const THREADS = /^(CrRendererMain|DedicatedWorker thread)$/;

function eventLabel(e: TraceEvent): string {
  const data = (e.args?.data ?? {}) as Record<string, unknown>;
  if (e.name === 'FunctionCall') {
    const fn = typeof data.functionName === 'string' && data.functionName ? data.functionName : '(anonymous)';
    const url = typeof data.url === 'string' ? (data.url.split('/').pop() ?? '') : '';
    return `FunctionCall ${fn}${url ? ` @${url}` : ''}`;
  }
  if (e.name === 'EventDispatch' && typeof data.type === 'string') return `EventDispatch ${data.type}`;
  return e.name;
}

/** Self time of nested complete events on one thread, by label. */
function selfTimes(events: TraceEvent[]): Map<string, { ms: number; count: number }> {
  const sorted = events
    .filter((e) => e.ph === 'X' && e.ts !== undefined && e.dur !== undefined)
    .sort((a, b) => a.ts! - b.ts! || b.dur! - a.dur!);
  const out = new Map<string, { ms: number; count: number }>();
  const stack: { end: number; label: string; childUs: number; dur: number }[] = [];
  const close = (upTo: number) => {
    while (stack.length && stack[stack.length - 1].end <= upTo) {
      const top = stack.pop()!;
      const row = out.get(top.label) ?? { ms: 0, count: 0 };
      row.ms += Math.max(0, top.dur - top.childUs) / 1000;
      row.count++;
      out.set(top.label, row);
      if (stack.length) stack[stack.length - 1].childUs += top.dur;
    }
  };
  for (const e of sorted) {
    close(e.ts!);
    stack.push({ end: e.ts! + e.dur!, label: eventLabel(e), childUs: 0, dur: e.dur! });
  }
  close(Number.POSITIVE_INFINITY);
  return out;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url?: string; lineNumber?: number };
  parent?: number;
}

/** Self time per function from the sampling profiler's chunks of one profile (ms). */
function sampledSelfTimes(chunks: TraceEvent[]): Map<string, number> {
  const nodes = new Map<number, ProfileNode>();
  const out = new Map<string, number>();
  for (const c of chunks) {
    const data = (c.args?.data ?? {}) as {
      cpuProfile?: { nodes?: ProfileNode[]; samples?: number[] };
      timeDeltas?: number[];
    };
    for (const n of data.cpuProfile?.nodes ?? []) nodes.set(n.id, n);
    const samples = data.cpuProfile?.samples ?? [];
    const deltas = data.timeDeltas ?? [];
    // a sample's time is the delta to the NEXT sample; the last one of a chunk takes its own delta
    for (let i = 0; i < samples.length; i++) {
      const n = nodes.get(samples[i]);
      if (!n) continue;
      const us = i + 1 < deltas.length ? deltas[i + 1] : i < deltas.length ? deltas[i] : 0;
      const f = n.callFrame;
      const file = f.url ? (f.url.split('/').pop() ?? '') : '';
      const name = `${f.functionName || '(anonymous)'}${file ? ` @${file}:${(f.lineNumber ?? 0) + 1}` : ''}`;
      out.set(name, (out.get(name) ?? 0) + Math.max(0, us) / 1000);
    }
  }
  return out;
}

function ranked<T extends { ms: number }>(rows: T[], top: number): T[] {
  return rows.sort((a, b) => b.ms - a.ms).slice(0, top);
}

/** Per thread of interest (page main threads, their dedicated workers), where the recorded time went. */
export function summariseTrace(events: readonly TraceEvent[], top = 25): ThreadSummary[] {
  const names = new Map<string, string>();
  for (const e of events)
    if (e.ph === 'M' && e.name === 'thread_name' && typeof e.args?.name === 'string')
      names.set(`${e.pid}:${e.tid}`, e.args.name);
  const byThread = new Map<string, TraceEvent[]>();
  for (const e of events) {
    const key = `${e.pid}:${e.tid}`;
    if (!THREADS.test(names.get(key) ?? '')) continue;
    const list = byThread.get(key) ?? [];
    list.push(e);
    byThread.set(key, list);
  }
  // profile chunks carry the sampled thread's tid (the 'Profile' event with the same id says which)
  const chunksById = new Map<string, TraceEvent[]>();
  const profileThread = new Map<string, string>();
  for (const e of events) {
    if (e.id === undefined) continue;
    if (e.name === 'Profile') profileThread.set(`${e.pid}:${e.id}`, `${e.pid}:${e.tid}`);
    if (e.name === 'ProfileChunk') {
      const list = chunksById.get(`${e.pid}:${e.id}`) ?? [];
      list.push(e);
      chunksById.set(`${e.pid}:${e.id}`, list);
    }
  }
  let origin = Number.POSITIVE_INFINITY; // a loop: a trace has too many events to spread into Math.min
  for (const e of events) if (e.ph === 'X' && e.ts !== undefined && e.ts < origin) origin = e.ts;
  const out: ThreadSummary[] = [];
  for (const [key, list] of byThread) {
    const [pid, tid] = key.split(':').map(Number);
    // top-level tasks, each once: Chrome nests 'RunTask' inside 'ThreadControllerImpl::RunTask'
    const tasks: TraceEvent[] = [];
    let taskEnd = Number.NEGATIVE_INFINITY;
    for (const e of list
      .filter((x) => x.ph === 'X' && TOP_LEVEL.has(x.name) && x.dur !== undefined && x.ts !== undefined)
      .sort((a, b) => a.ts! - b.ts! || b.dur! - a.dur!)) {
      if (e.ts! < taskEnd) continue;
      tasks.push(e);
      taskEnd = e.ts! + e.dur!;
    }
    const sampled = new Map<string, number>();
    for (const [id, chunks] of chunksById) {
      const owner = profileThread.get(id) ?? `${chunks[0].pid}:${chunks[0].tid}`;
      if (owner !== key) continue;
      for (const [name, ms] of sampledSelfTimes(chunks)) sampled.set(name, (sampled.get(name) ?? 0) + ms);
    }
    const nested = list.filter((e) => !TOP_LEVEL.has(e.name));
    const self = selfTimes(nested);
    const long = tasks.filter((e) => e.dur! > LONG_TASK_US).sort((a, b) => b.dur! - a.dur!);
    out.push({
      pid,
      tid,
      thread: names.get(key) ?? '?',
      busyMs: tasks.reduce((s, e) => s + e.dur! / 1000, 0),
      tasks: tasks.length,
      longTasks: long.length,
      longTaskList: long.map((t) => ({
        startMs: (t.ts! - origin) / 1000,
        durationMs: t.dur! / 1000,
        cpuMs: t.tdur === undefined ? null : t.tdur / 1000,
        byEvent: ranked(
          [...selfTimes(nested.filter((e) => e.ts !== undefined && e.ts >= t.ts! && e.ts < t.ts! + t.dur!))].map(
            ([name, r]) => ({ name, ms: r.ms }),
          ),
          6,
        ),
      })),
      byEvent: ranked(
        [...self].map(([name, r]) => ({ name, ms: r.ms, count: r.count })),
        top,
      ),
      byFunction: ranked(
        [...sampled].map(([name, ms]) => ({ name, ms })),
        top,
      ),
    });
  }
  return out.sort((a, b) => b.busyMs - a.busyMs);
}

/**
 * What each renderer's thread pool spent CPU on (trace 'tdur', ms): on a device held to a share of a core
 * this work takes the stage's own quota. Kinds are events that do not nest in each other.
 */
export const BACKGROUND_KINDS: Readonly<Record<string, (name: string) => boolean>> = {
  'wasm top-tier compile': (n) => n === 'wasm.TopTierCompilation',
  'JS optimise': (n) => n === 'V8.MaglevTask' || n === 'V8.TurbofanTask',
  raster: (n) => n === 'RasterTask',
  GC: (n) => /^V8\.GC_.*BACKGROUND/.test(n),
};

export interface BackgroundCpu {
  pid: number;
  /** every thread-pool task's CPU, ms */
  totalMs: number;
  byKind: Record<string, number>;
}

export function backgroundCpu(events: readonly TraceEvent[]): BackgroundCpu[] {
  const names = new Map<string, string>();
  for (const e of events)
    if (e.ph === 'M' && e.name === 'thread_name' && typeof e.args?.name === 'string')
      names.set(`${e.pid}:${e.tid}`, e.args.name);
  const renderers = new Set<number>();
  for (const [key, name] of names) if (THREADS.test(name)) renderers.add(Number(key.split(':')[0]));
  const out = new Map<number, BackgroundCpu>();
  for (const e of events) {
    if (e.ph !== 'X' || !renderers.has(e.pid) || !/^ThreadPool/.test(names.get(`${e.pid}:${e.tid}`) ?? '')) continue;
    const row = out.get(e.pid) ?? { pid: e.pid, totalMs: 0, byKind: {} };
    const ms = (e.tdur ?? e.dur ?? 0) / 1000;
    if (e.name === 'ThreadPool_RunTask') row.totalMs += ms;
    for (const [kind, match] of Object.entries(BACKGROUND_KINDS))
      if (match(e.name)) row.byKind[kind] = (row.byKind[kind] ?? 0) + ms;
    out.set(e.pid, row);
  }
  return [...out.values()].sort((a, b) => a.pid - b.pid);
}

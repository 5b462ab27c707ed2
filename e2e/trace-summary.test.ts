import { describe, expect, it } from 'vitest';
import { backgroundCpu, summariseTrace, type TraceEvent } from './trace-summary.ts';

const meta = (tid: number, name: string): TraceEvent => ({
  name: 'thread_name',
  ph: 'M',
  pid: 1,
  tid,
  args: { name },
});
const x = (tid: number, name: string, ts: number, dur: number, data?: Record<string, unknown>): TraceEvent => ({
  name,
  ph: 'X',
  pid: 1,
  tid,
  ts,
  dur,
  ...(data ? { args: { data } } : {}),
});

describe('summariseTrace', () => {
  it("sums a page main thread's top-level tasks and gives nested events their self time", () => {
    const events = [
      meta(10, 'CrRendererMain'),
      meta(11, 'Compositor'),
      // task 1: 10 ms, a function call of 6 ms with 2 ms of layout inside it
      x(10, 'RunTask', 0, 10_000),
      x(10, 'FunctionCall', 1_000, 6_000, { functionName: 'render', url: 'http://h/assets/page.js' }),
      x(10, 'Layout', 2_000, 2_000),
      // task 2: 60 ms (20 ms of it on the CPU), a message event; Chrome nests RunTask in another task event
      { ...x(10, 'ThreadControllerImpl::RunTask', 20_000, 60_000), tdur: 20_000 },
      x(10, 'RunTask', 20_000, 60_000),
      x(10, 'EventDispatch', 20_000, 50_000, { type: 'message' }),
      // another thread: left out
      x(11, 'RunTask', 0, 99_000),
    ];
    const [main, ...rest] = summariseTrace(events);
    expect(rest).toEqual([]);
    expect(main.thread).toBe('CrRendererMain');
    expect(main.busyMs).toBeCloseTo(70);
    expect(main.tasks).toBe(2);
    expect(main.longTasks).toBe(1);
    // the long task (task 2) is itemised: where it starts and what filled it
    expect(main.longTaskList).toHaveLength(1);
    expect(main.longTaskList[0].startMs).toBeCloseTo(20);
    expect(main.longTaskList[0].durationMs).toBeCloseTo(60);
    expect(main.longTaskList[0].cpuMs).toBeCloseTo(20);
    expect(main.longTaskList[0].byEvent).toEqual([{ name: 'EventDispatch message', ms: 50 }]);
    const byName = Object.fromEntries(main.byEvent.map((e) => [e.name, e.ms]));
    expect(byName['EventDispatch message']).toBeCloseTo(50);
    expect(byName['FunctionCall render @page.js']).toBeCloseTo(4);
    expect(byName.Layout).toBeCloseTo(2);
  });

  it("attributes the sampling profiler's samples to the thread of their profile, by function", () => {
    const chunk = (samples: number[], timeDeltas: number[], withNodes: boolean): TraceEvent => ({
      name: 'ProfileChunk',
      ph: 'P',
      pid: 1,
      tid: 99, // chunks may be written from another thread than the profiled one
      id: '0x1',
      args: {
        data: {
          cpuProfile: {
            ...(withNodes
              ? {
                  nodes: [
                    { id: 1, callFrame: { functionName: '(root)' } },
                    { id: 2, callFrame: { functionName: 'argmax', url: 'x/sampler.ts', lineNumber: 26 } },
                  ],
                }
              : {}),
            samples,
          },
          timeDeltas,
        },
      },
    });
    const events: TraceEvent[] = [
      meta(20, 'DedicatedWorker thread'),
      x(20, 'RunTask', 0, 5_000),
      { name: 'Profile', ph: 'P', pid: 1, tid: 20, id: '0x1', args: {} },
      chunk([2, 2, 1], [0, 1_000, 1_000], true),
      chunk([2], [3_000], false),
    ];
    const [worker] = summariseTrace(events);
    const byFn = Object.fromEntries(worker.byFunction.map((f) => [f.name, f.ms]));
    // each sample lasts until the next one of its chunk; a chunk's last sample takes its own delta
    expect(byFn['argmax @sampler.ts:27']).toBeCloseTo(1 + 1 + 3);
    expect(byFn['(root)']).toBeCloseTo(1);
  });
});

describe('backgroundCpu', () => {
  it("sums each renderer's thread-pool CPU (tdur) by kind, leaving other processes and threads out", () => {
    const m = (pid: number, tid: number, name: string): TraceEvent => ({ ...meta(tid, name), pid });
    const cpu = (pid: number, tid: number, name: string, ts: number, dur: number, tdur: number): TraceEvent => ({
      ...x(tid, name, ts, dur),
      pid,
      tdur,
    });
    const events = [
      m(1, 10, 'CrRendererMain'),
      m(1, 20, 'ThreadPoolForegroundWorker'),
      m(2, 30, 'CrBrowserMain'),
      m(2, 40, 'ThreadPoolForegroundWorker'),
      // renderer 1's pool: a wasm tier-up task (8 ms CPU of 30 ms wall) and a raster task
      cpu(1, 20, 'ThreadPool_RunTask', 0, 30_000, 9_000),
      cpu(1, 20, 'wasm.ExecuteCompilationUnits', 0, 30_000, 8_500),
      cpu(1, 20, 'wasm.TopTierCompilation', 0, 29_000, 8_000),
      cpu(1, 20, 'ThreadPool_RunTask', 40_000, 5_000, 4_000),
      cpu(1, 20, 'RasterTask', 40_000, 5_000, 3_000),
      cpu(1, 20, 'V8.GC_MC_BACKGROUND_MARKING', 40_000, 1_000, 1_000),
      // the main thread's own GC and the browser process's pool are not a renderer's pool
      cpu(1, 10, 'V8.GC_MC_BACKGROUND_MARKING', 0, 9_000, 9_000),
      cpu(2, 40, 'ThreadPool_RunTask', 0, 50_000, 50_000),
    ];
    expect(backgroundCpu(events)).toEqual([
      { pid: 1, totalMs: 13, byKind: { 'wasm top-tier compile': 8, raster: 3, GC: 1 } },
    ]);
  });
});

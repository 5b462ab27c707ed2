import { describe, expect, it } from 'vitest';
import {
  labCpuReport,
  processCpuSec,
  processKind,
  summariseWindow,
  threadKind,
  traceWithin,
  type LabCpuTrace,
} from './lab-cpu.ts';
import type { PlanRun } from './run-summary.ts';

describe('lab CPU trace', () => {
  it("reads a process's kind and CPU seconds as /proc writes them", () => {
    expect(processKind('/usr/lib/chromium/chromium --type=renderer --lang=en')).toBe('renderer');
    expect(
      processKind('/usr/lib/chromium/chromium --type=utility --utility-sub-type=network.mojom.NetworkService'),
    ).toBe('network');
    expect(processKind('/usr/lib/chromium/chromium --headless --remote-debugging-pipe')).toBe('browser');
    // pid (comm with spaces and a paren) state ppid ... utime=fields 14, stime=15 (clock ticks)
    const stat = '4242 (Chrome (x) Main) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 12';
    expect(processCpuSec(stat)).toBeCloseTo(3.0, 9);
    expect(['CrRendererMain', 'DedicatedWorker', 'ThreadPoolForeg', 'Compositor'].map(threadKind)).toEqual([
      'main',
      'worker',
      'pool',
      'other',
    ]);
  });

  // Device 0 (quota 0.5 core) uses 0.5 core for 2 s then 0.1 core; device 1 (0.25) uses 0.25 throughout.
  const trace: LabCpuTrace = {
    intervalMs: 1000,
    devices: [
      {
        cgroup: 'd0',
        cores: 0.5,
        samples: [0, 1, 2, 3, 4].map((s) => ({
          t: 1000 * s,
          cpuSec: { renderer: 0.4 * Math.min(s, 2) + 0.1 * Math.max(0, s - 2), browser: 0.1 * Math.min(s, 2) },
          periods: 10 * s,
          throttled: 8 * Math.min(s, 2),
        })),
      },
      {
        cgroup: 'd1',
        cores: 0.25,
        samples: [0, 1, 2, 3, 4].map((s) => ({
          t: 1000 * s,
          cpuSec: { renderer: 0.25 * s },
          periods: 10 * s,
          throttled: 0,
        })),
      },
    ],
    machine: [0, 1, 2, 3, 4].map((s) => ({ t: 1000 * s, busy: 150 * s, total: 200 * s, steal: 0, load1: 3 })),
    processKinds: [],
  };

  it('summarises a window: cores used per device and kind, the throttled share, the machine busy', () => {
    const first = summariseWindow(trace, 0, 2000, 2);
    expect(first.devices[0].used).toBeCloseTo(0.5, 9);
    expect(first.devices[0].byKind.renderer).toBeCloseTo(0.4, 9);
    expect(first.devices[0].throttledShare).toBeCloseTo(0.8, 9);
    expect(first.devices[1].used).toBeCloseTo(0.25, 9);
    expect(first.machineBusyCores).toBeCloseTo(1.5, 9);
    // half a sample interval on each side: interpolated
    const mid = summariseWindow(trace, 1500, 2500, 2);
    expect(mid.devices[0].used).toBeCloseTo(0.5 * 0.5 + 0.5 * 0.1, 9);
    expect(mid.devices[0].throttledShare).toBeCloseTo(4 / 10, 9);
  });

  it("windows each stage's session creation and prefill compute on its own device, from the page's clock", () => {
    // go at 1000 ms (wall); the stage on device 1 ('dev-b') created its session 0-1000 ms and computed 1000-2000 ms
    // after it, on its own clock; device 0 ('dev-a') holds no stage
    const run = {
      stages: [{ peerId: 'p1', name: 'dev-b' }],
      timings: {
        p1: [
          { phase: 'session-create', step: 0, startMs: 0, endMs: 1000 },
          { phase: 'compute', step: 0, startMs: 1000, endMs: 2000 },
          { phase: 'compute', step: 1, startMs: 2500, endMs: 2510 },
        ],
      },
    } as unknown as PlanRun;
    const r = labCpuReport(trace, [{ label: 'cold', startMs: 1000, endMs: 4000, run }], ['dev-a', 'dev-b']);
    const [one] = r.runs;
    expect(one.creates).toHaveLength(1);
    expect(one.creates![0]).toMatchObject({ stage: 0, name: 'dev-b', device: 1, seconds: 1 });
    // the window is the creation's: 1000-2000 ms wall, where device 0 used 0.5 core and device 1 0.25
    expect(one.creates![0].window.devices[0].used).toBeCloseTo(0.5, 9);
    expect(one.computes).toHaveLength(1);
    expect(one.computes[0]).toMatchObject({ device: 1, seconds: 1 });
    // the compute's window is 2000-3000 ms: device 0 down to 0.1 core
    expect(one.computes[0].window.devices[0].used).toBeCloseTo(0.1, 9);
  });

  it('keeps only the samples around the windows', () => {
    const kept = traceWithin(trace, [{ startMs: 1500, endMs: 2500 }]);
    expect(kept.devices[0].samples.map((s) => s.t)).toEqual([1000, 2000, 3000]);
    expect(summariseWindow(kept, 1500, 2500, 2).devices[0].used).toBeCloseTo(0.3, 9);
  });
});

/**
 * What the lab's CPU quotas did during a run (issue 12): per device, the CPU seconds its processes used
 * (by process kind: Chromium's browser, renderer, gpu, utility processes) and its control group's
 * throttling (cpu.stat), sampled every few hundred ms beside the machine's load, so that a report can say
 * whether a device got its quota while it computed and whether the rest of the machine was busy.
 *
 *   const sampler = startLabCpuSampler(lab.devices);   // I/O: /proc and the groups' cpu.stat
 *   ... runs ...
 *   const trace = sampler.stop();                       // plain data, saved with the bench JSON
 *   summariseWindow(trace, startMs, endMs)              // pure: per device cores used, throttled share
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import type { PlanRun } from './run-summary.ts';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ; 100 on Linux). */
const CLOCK_TICKS = 100;

/** One sample of one device: cumulative counters (monotone while its processes live). */
export interface DeviceCpuSample {
  /** Wall clock, ms (Date.now()). */
  t: number;
  /** CPU seconds used so far by the device's live processes, per Chromium process kind. */
  cpuSec: Record<string, number>;
  /** cpu.stat: enforcement periods so far, and how many of them ran out of quota. */
  periods: number;
  throttled: number;
}

export interface MachineSample {
  t: number;
  /** Busy and total jiffies of the whole machine (/proc/stat), and the steal counter. */
  busy: number;
  total: number;
  steal: number;
  load1: number;
}

export interface LabCpuTrace {
  intervalMs: number;
  devices: { cgroup: string; cores: number; samples: DeviceCpuSample[] }[];
  machine: MachineSample[];
  /** Chromium processes per device group when the sampler stopped, by kind (each page's tree in its group). */
  processKinds: Record<string, number>[];
}

export interface LabCpuDevice {
  cgroup: string;
  shape: { cores: number };
}

/** Chromium's process kind from its command line: the --type= switch, 'browser' without one. */
export function processKind(cmdline: string): string {
  const m = /--type=([a-z-]+)/.exec(cmdline);
  if (!m) return cmdline.includes('chrom') ? 'browser' : 'other';
  if (m[1] === 'utility') return /--utility-sub-type=network/.test(cmdline) ? 'network' : 'utility';
  return m[1];
}

/**
 * A renderer thread's kind from its name (/proc/<pid>/task/<tid>/stat, 15 characters at most). In /proc
 * the main thread keeps the process's name: callers know it as the thread whose id is the pid.
 */
export function threadKind(name: string): string {
  if (name === 'CrRendererMain') return 'main';
  if (name.startsWith('DedicatedWorker')) return 'worker';
  if (name.startsWith('ThreadPool')) return 'pool';
  return 'other';
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // a process that exited between listing and reading
  }
}

/** utime + stime of a process, seconds (fields 14 and 15 of /proc/<pid>/stat, after the command name). */
export function processCpuSec(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS;
}

function sampleDevice(cgroup: string): { sample: Omit<DeviceCpuSample, 't'>; kinds: Record<string, number> } {
  const cpuSec: Record<string, number> = {};
  const kinds: Record<string, number> = {};
  const pids = (readText(join(cgroup, 'cgroup.procs')) ?? '').split('\n').filter(Boolean);
  for (const pid of pids) {
    const stat = readText(`/proc/${pid}/stat`);
    const cmd = readText(`/proc/${pid}/cmdline`);
    if (stat === null || cmd === null) continue;
    const kind = processKind(cmd.replaceAll('\0', ' '));
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    if (kind !== 'renderer') {
      cpuSec[kind] = (cpuSec[kind] ?? 0) + processCpuSec(stat);
      continue;
    }
    // a renderer by thread: its main thread, the inference worker, V8's and Blink's pools (compile, GC)
    let threads: string[] = [];
    try {
      threads = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // exited
    }
    for (const tid of threads) {
      const t = readText(`/proc/${pid}/task/${tid}/stat`);
      if (t === null) continue;
      // the main thread keeps the process's name in /proc ('chromium'): it is the thread whose id is the pid
      const k = `renderer:${tid === pid ? 'main' : threadKind(t.slice(t.indexOf('(') + 1, t.lastIndexOf(')')))}`;
      cpuSec[k] = (cpuSec[k] ?? 0) + processCpuSec(t);
    }
  }
  const stat = new Map(
    (readText(join(cgroup, 'cpu.stat')) ?? '')
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(' ') as [string, string]),
  );
  return {
    sample: { cpuSec, periods: Number(stat.get('nr_periods') ?? 0), throttled: Number(stat.get('nr_throttled') ?? 0) },
    kinds,
  };
}

function sampleMachine(): MachineSample {
  const cpu = (readText('/proc/stat') ?? '').split('\n')[0].split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  return { t: Date.now(), busy: total - idle, total, steal: cpu[7] ?? 0, load1: loadavg()[0] };
}

/** Starts sampling every `intervalMs`; stop() returns the trace (I/O: reads /proc and cpu.stat). */
export function startLabCpuSampler(
  devices: readonly LabCpuDevice[],
  intervalMs = 200,
): { stop(): LabCpuTrace; mark(): number } {
  const trace: LabCpuTrace = {
    intervalMs,
    devices: devices.map((d) => ({ cgroup: d.cgroup, cores: d.shape.cores, samples: [] })),
    machine: [],
    processKinds: [],
  };
  let kinds: Record<string, number>[] = devices.map(() => ({}));
  const tick = () => {
    const t = Date.now();
    kinds = devices.map((d, i) => {
      const s = sampleDevice(d.cgroup);
      trace.devices[i].samples.push({ t, ...s.sample });
      return s.kinds;
    });
    trace.machine.push(sampleMachine());
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    mark: () => Date.now(),
    stop: () => {
      clearInterval(timer);
      tick();
      trace.processKinds = kinds;
      return trace;
    },
  };
}

export interface DeviceWindow {
  cores: number;
  /** CPU cores the device's processes used over the window, on average (quota = `cores`). */
  used: number;
  /** The same by process kind. */
  byKind: Record<string, number>;
  /** Share of its enforcement periods in which the device ran out of quota. */
  throttledShare: number | null;
}

export interface WindowSummary {
  seconds: number;
  devices: DeviceWindow[];
  /** Cores the whole machine was busy, on average, and its 1-minute load at the window's end. */
  machineBusyCores: number | null;
  machineSteal: number | null;
  load1: number | null;
}

/** Linear interpolation of a cumulative counter at time t (clamped to the samples). */
function at<T extends { t: number }>(samples: readonly T[], t: number, value: (s: T) => number): number {
  if (samples.length === 0) return NaN;
  if (t <= samples[0].t) return value(samples[0]);
  for (let i = 1; i < samples.length; i++) {
    const b = samples[i];
    if (t <= b.t) {
      const a = samples[i - 1];
      return value(a) + ((value(b) - value(a)) * (t - a.t)) / Math.max(1, b.t - a.t);
    }
  }
  return value(samples[samples.length - 1]);
}

const total = (s: DeviceCpuSample) => Object.values(s.cpuSec).reduce((a, b) => a + b, 0);

/** What every device used between two wall-clock times (ms), pure. */
export function summariseWindow(trace: LabCpuTrace, startMs: number, endMs: number, cores: number): WindowSummary {
  const seconds = Math.max(1e-3, (endMs - startMs) / 1000);
  const devices = trace.devices.map((d): DeviceWindow => {
    const kinds = new Set(d.samples.flatMap((s) => Object.keys(s.cpuSec)));
    const byKind: Record<string, number> = {};
    for (const k of kinds)
      byKind[k] =
        (at(d.samples, endMs, (s) => s.cpuSec[k] ?? 0) - at(d.samples, startMs, (s) => s.cpuSec[k] ?? 0)) / seconds;
    const periods = at(d.samples, endMs, (s) => s.periods) - at(d.samples, startMs, (s) => s.periods);
    const throttled = at(d.samples, endMs, (s) => s.throttled) - at(d.samples, startMs, (s) => s.throttled);
    return {
      cores: d.cores,
      used: (at(d.samples, endMs, total) - at(d.samples, startMs, total)) / seconds,
      byKind,
      throttledShare: periods > 0 ? throttled / periods : null,
    };
  });
  const m = trace.machine;
  const dBusy = at(m, endMs, (s) => s.busy) - at(m, startMs, (s) => s.busy);
  const dTotal = at(m, endMs, (s) => s.total) - at(m, startMs, (s) => s.total);
  const dSteal = at(m, endMs, (s) => s.steal) - at(m, startMs, (s) => s.steal);
  return {
    seconds,
    devices,
    machineBusyCores: dTotal > 0 ? (cores * dBusy) / dTotal : null,
    machineSteal: dTotal > 0 ? dSteal / dTotal : null,
    load1: m.length ? at(m, endMs, (s) => s.load1) : null,
  };
}

/** The trace with only the samples inside the windows (plus one on each side), to keep the JSON small. */
export function traceWithin(trace: LabCpuTrace, windows: readonly { startMs: number; endMs: number }[]): LabCpuTrace {
  const keep = <T extends { t: number }>(xs: readonly T[]) =>
    xs.filter((s, i) =>
      windows.some(
        (w) =>
          (s.t >= w.startMs && s.t <= w.endMs) ||
          (i + 1 < xs.length && xs[i + 1].t > w.startMs && s.t < w.startMs) ||
          (i > 0 && xs[i - 1].t < w.endMs && s.t > w.endMs),
      ),
    );
  return {
    ...trace,
    devices: trace.devices.map((d) => ({ ...d, samples: keep(d.samples) })),
    machine: keep(trace.machine),
  };
}

export interface LabRunWindow {
  label: string;
  /** Wall clock (Date.now()) at the driver's go and when the run ended. */
  startMs: number;
  endMs: number;
  run: PlanRun;
}

export interface PhaseWindow {
  stage: number;
  name: string;
  device: number;
  seconds: number;
  window: WindowSummary;
}

/** Per run: the devices' CPU over the whole request, and per stage over its prefill compute and creation. */
export interface LabCpuReport {
  runs: {
    label: string;
    whole: WindowSummary;
    /** Per stage: its lab device (index), the compute seconds, and the device's cores used meanwhile. */
    computes: PhaseWindow[];
    /**
     * The same over each stage's session creation: on a lab device the creation shares the quota with the
     * page's other threads (V8's compilation and GC in the thread pool, the view's drawing).
     */
    creates?: PhaseWindow[];
  }[];
  trace: LabCpuTrace;
}

export function labCpuReport(trace: LabCpuTrace, windows: readonly LabRunWindow[], labNames: string[]): LabCpuReport {
  const cores = cpus().length;
  return {
    runs: windows.map((w) => {
      const phase = (name: 'compute' | 'session-create'): PhaseWindow[] =>
        w.run.stages.flatMap((s, n) => {
          const c = (w.run.timings[s.peerId] ?? []).find((t) => t.phase === name && t.step === 0);
          // page timings start at the server's send of start (each page's clock through its heartbeat offset), ms after go
          return c
            ? [
                {
                  stage: n,
                  name: s.name,
                  device: labNames.indexOf(s.name),
                  seconds: (c.endMs - c.startMs) / 1000,
                  window: summariseWindow(trace, w.startMs + c.startMs, w.startMs + c.endMs, cores),
                },
              ]
            : [];
        });
      return {
        label: w.label,
        whole: summariseWindow(trace, w.startMs, w.endMs, cores),
        computes: phase('compute'),
        creates: phase('session-create'),
      };
    }),
    trace: traceWithin(trace, windows),
  };
}

const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(0)}%`);

/** Per run, per device: cores used / quota over the request and over each stage's creation and prefill compute. */
export function formatLabCpu(r: LabCpuReport): string {
  const lines = [
    'lab CPU: cores used / quota (throttled periods), per run over the whole request; machine busy cores, load',
  ];
  for (const run of r.runs) {
    const w = run.whole;
    lines.push(
      `${run.label.padEnd(12)} ${w.devices.map((d, i) => `d${i} ${d.used.toFixed(2)}/${d.cores} (${pct(d.throttledShare)})`).join('  ')}  machine ${w.machineBusyCores?.toFixed(2) ?? '-'} cores, load ${w.load1?.toFixed(1) ?? '-'}`,
    );
    const rows = [
      ...(run.creates ?? []).map((c) => ['create', c] as const),
      ...run.computes.map((c) => ['compute', c] as const),
    ].sort((a, b) => a[1].stage - b[1].stage);
    for (const [what, c] of rows) {
      if (c.device < 0 || c.device >= c.window.devices.length) continue;
      const d = c.window.devices[c.device];
      const kinds = Object.entries(d.byKind)
        .filter(([, v]) => v >= 0.01)
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(', ');
      lines.push(
        `    stage ${c.stage} ${c.name.padEnd(12)} ${what.padEnd(7)} ${c.seconds.toFixed(2)} s: ${d.used.toFixed(2)}/${d.cores} cores (${kinds}), throttled ${pct(d.throttledShare)}`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * The lab gives each device's page main threads the priority Chromium gives its own display threads.
 *
 * A lab device is one CPU control group with a quota (e.g. 0.4 of a core) for all of its browser's
 * threads. While the page's inference worker computes, the page's main thread is a second runnable thread
 * in that group and gets half of it: a frame of 10 ms of CPU took 50 ms and more (a traced cold request:
 * frames of 7-17 ms of CPU lasted 80-440 ms). A phone does not work that way: its worker runs on one
 * core, the UI thread on another, and the OS favours the foreground app's UI thread. Chromium on Linux
 * already runs its compositor threads at nice -8 when it may (as root in the lab it may), but not the
 * renderer's main thread; the lab does that for it. The device's quota, and so its total CPU, stays the
 * same: the main thread only goes first within it. A priority counts only among the threads of one CPU,
 * so the lab also confines each device's browser to one CPU (labDeviceCpus below).
 *
 * The main thread of a renderer process is the thread whose id is the process id, so `setpriority` on the
 * renderer's pid changes that thread alone (Linux priorities are per thread), not its worker threads.
 */
import { readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Chromium's nice for display-critical threads (its compositor threads run at it). */
export const LAB_UI_NICE = -8;

/** The nice for page main threads; `TANDEM_LAB_UI_NICE` overrides it for A/B runs (0: as Chromium leaves it). */
export function labUiNice(env: NodeJS.ProcessEnv = process.env): number {
  const forced = env.TANDEM_LAB_UI_NICE;
  if (forced === undefined || forced === '') return LAB_UI_NICE;
  const n = Number(forced);
  return Number.isInteger(n) && n >= -20 && n <= 19 ? n : LAB_UI_NICE;
}

/** Whether `pid` is a Chromium renderer process (its command line has --type=renderer). */
export function isRenderer(pid: number, readCmdline = defaultReadCmdline): boolean {
  const cmd = readCmdline(pid);
  // zygote-forked renderers rewrite their command line as one space-separated string (setproctitle)
  return cmd !== null && /(^|[\0 ])--type=renderer([\0 ]|$)/.test(cmd);
}

function defaultReadCmdline(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return null; // exited meanwhile
  }
}

/**
 * Raises the main thread of every renderer among `pids` that Chromium runs as a foreground renderer (nice
 * 0) to `nice`; returns the pids raised now. Looked at again each time: Chromium sets a renderer's main
 * thread priority itself (0 in front, 5 in the background) on visibility changes, and a renderer forked by
 * the zygote shows its own command line only a moment after it starts. A process that exits meanwhile is
 * skipped.
 */
export function raiseRendererMainThreads(
  pids: readonly number[],
  nice: number,
  deps: {
    readCmdline?: (pid: number) => string | null;
    getPriority?: (pid: number) => number;
    setPriority?: (pid: number, nice: number) => void;
  } = {},
): number[] {
  const raised: number[] = [];
  for (const pid of pids) {
    if (!isRenderer(pid, deps.readCmdline)) continue;
    try {
      if ((deps.getPriority ?? getPriority)(pid) !== 0) continue;
      (deps.setPriority ?? setPriority)(pid, nice);
      raised.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return raised;
}

/**
 * The CPU each device's browser is confined to, or null where it runs free. Linux weighs a thread's nice
 * against the threads of its own CPU's run queue only; the quota of a device's group is shared by all of
 * its CPUs. Free to spread over this machine's two CPUs, a device's worker computed on one while its
 * page's main thread ran on the other, and the two split the quota evenly whatever their nice: in a traced
 * cold request on 4 equal 0.4-core devices, frames of 5-12 ms of CPU took 54-73 ms, 1-3 per page over
 * 50 ms. Confined to one CPU, the main thread's raised priority (above) puts it ahead of the worker within
 * the quota, as a phone's UI thread is not held up by its other work; the same trace then had none over
 * 50 ms. Devices go to the least-loaded CPU, the largest first, while the shares on a CPU stay within one
 * core; a device of more than one core, or one that fits nowhere, runs free (one CPU would cap it).
 */
export function labDeviceCpus(cores: readonly number[], cpus: readonly number[]): (number | null)[] {
  const load = cpus.map(() => 0);
  const out: (number | null)[] = cores.map(() => null);
  if (cpus.length < 2) return out; // on one CPU the threads share a run queue already
  const largestFirst = cores.map((_, i) => i).sort((a, b) => cores[b] - cores[a] || a - b);
  for (const i of largestFirst) {
    const k = load.indexOf(Math.min(...load));
    if (cores[i] > 1 || load[k] + cores[i] > 1) continue;
    out[i] = cpus[k];
    load[k] += cores[i];
  }
  return out;
}

/** Whether the lab confines devices to a CPU (`TANDEM_LAB_PIN=0` lets them run free, for A/B runs). */
export function labPinning(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TANDEM_LAB_PIN !== '0';
}

/** The CPU ids of a `Cpus_allowed_list` ("0-1", "0,2-3"). */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`not a CPU list: ${list}`);
    for (let c = Number(m[1]); c <= Number(m[2] || m[1]); c++) cpus.push(c);
  }
  return cpus;
}

/** The CPUs this process may run on (what the lab's devices may be confined to). */
export function allowedCpus(status = readFileSync('/proc/self/status', 'utf8')): number[] {
  const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(status);
  return line ? parseCpuList(line[1]) : [];
}

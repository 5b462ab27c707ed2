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
 * so the lab also confines each device's browser to one CPU (lab-cpus.ts).
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

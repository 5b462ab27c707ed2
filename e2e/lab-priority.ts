/**
 * Foreground priority on a lab device. All of a device's threads share its quota (a fraction of one
 * core), and CFS shares a group's time evenly between its runnable threads: the renderer's main thread
 * competes with the page's workers (the inference worker creating a session or running a prefill, the
 * download worker hashing a unit) and with V8's thread pool (compiling that worker's wasm). A traced cold request on 0.4-
 * core devices showed main-thread tasks of 5-17 ms of CPU taking 90-300 ms of wall time, against the
 * ~2.5x a 0.4-core CPU explains. A phone runs those threads on other cores, and its scheduler favours
 * the foreground UI thread.
 *
 * So the lab lowers the weight of each device renderer's dedicated-worker and thread-pool threads (nice
 * BACKGROUND_NICE, weight 110 against a normal thread's 1024: the mechanism Chromium itself uses for its
 * background threads): while the main thread has work it gets ~90% of the quota, and while it is idle
 * the workers get all of it, so the device's compute is still its share. A poller renices new threads as
 * they appear (a page starts its workers at load, long before a request).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { threadKind } from './lab-cpu.ts';

/** The nice value the lab gives a device renderer's background threads. */
export const BACKGROUND_NICE = 10;
const POLL_MS = 250;

/**
 * Whether a renderer thread (by its name) is background work: the page's dedicated workers and the thread
 * pool (V8 compiling the worker's wasm, garbage collection). Both keep one weight, so that the inference
 * worker and the compiles it waits for share the quota as before. Chromium's own above-normal threads
 * (compositor, I/O, WebRTC's network thread, the pool's presentation and audio threads) and the pool's
 * service thread are left alone.
 */
export function isBackgroundThread(name: string): boolean {
  const kind = threadKind(name);
  return kind === 'worker' || (kind === 'pool' && !name.startsWith('ThreadPoolServi'));
}

export interface ForegroundPriority {
  /** threads reniced so far */
  reniced(): number;
  stop(): void;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // exited between listing and reading
  }
}

/** Renices the background threads of every renderer among `pids()` (each device's processes), now and as they appear. */
export function startForegroundPriority(
  devices: readonly { pids(): number[] }[],
  renice: (tid: number, nice: number) => void = (tid, nice) => setPriority(tid, nice),
): ForegroundPriority {
  // every poll reads each thread's name and nice afresh: a new thread carries its creator's name until it
  // names itself, and Chromium may set a thread's priority after it has started
  const reniced = new Set<number>();
  const renderers = new Set<number>();
  const poll = () => {
    for (const d of devices)
      for (const pid of d.pids()) {
        // a renderer forked from the zygote shows the zygote's command line for a moment: only a
        // renderer is remembered, anything else is looked at again on the next poll
        if (!renderers.has(pid)) {
          if (!(readText(`/proc/${pid}/cmdline`) ?? '').includes('--type=renderer')) continue;
          renderers.add(pid);
        }
        let tids: string[];
        try {
          tids = readdirSync(`/proc/${pid}/task`);
        } catch {
          continue;
        }
        for (const t of tids) {
          const tid = Number(t);
          const stat = readText(`/proc/${pid}/task/${t}/stat`);
          if (stat === null) continue;
          const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
          const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
          // Chromium's above-normal pool threads (presentation, audio) stay above normal
          if (!isBackgroundThread(name) || nice === BACKGROUND_NICE || nice < 0) continue;
          try {
            renice(tid, BACKGROUND_NICE);
            reniced.add(tid);
          } catch {
            // the thread ended meanwhile
          }
        }
      }
  };
  poll();
  const timer = setInterval(poll, POLL_MS);
  timer.unref();
  return { reniced: () => reniced.size, stop: () => clearInterval(timer) };
}

/**
 * An emulated storage read cap for a whole page (?emulate= readMBps), as a disk has one: reads that run
 * at once share the cap instead of each getting it. A stage reads its units concurrently; stretched one
 * by one, N units of P bytes took max(P_u) / cap instead of sum(P_u) / cap, so a stage's read time did not
 * grow with its bytes, which is what the planner's r_k (bytes/s) models and what a real disk does.
 *
 * Each finished read reserves bytes / cap on one shared timeline, starting no earlier than the read began
 * and no earlier than the previous reservation ended; the caller sleeps until its reservation ends. A lone
 * read gets bytes / cap, as before; k reads of b bytes started together end at b/cap, 2b/cap .. kb/cap.
 * Pure: the clock is passed in (ms, as performance.now()).
 */
export class ReadPacer {
  /** End of the last reservation on the page's read timeline (ms). */
  private busyUntilMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly capBytesPerSec: number | undefined) {}

  /** Seconds to sleep after a read of `bytes` that began at `startedMs` and ended at `nowMs`. */
  delaySeconds(bytes: number, startedMs: number, nowMs: number): number {
    if (this.capBytesPerSec === undefined) return 0;
    const start = Math.max(startedMs, this.busyUntilMs);
    this.busyUntilMs = start + (1000 * bytes) / this.capBytesPerSec;
    return Math.max(0, this.busyUntilMs - nowMs) / 1000;
  }
}

/**
 * How long a device may stay silent before it counts as lost: the configured loss timeout, or longer
 * for a device that has shown itself slow to answer.
 *
 * Every page's socket is pinged once a second and its pages send messages; each message or pong is a
 * sign of life. A phone or a lab device at a third of a core whose pongs and messages come 2 s apart
 * while it is busy is slow, not gone: judging it by a fixed 3 s would lose it for nothing (and a lost
 * stage costs a repair and a replay). So, like TCP's retransmission timeout, the limit follows what
 * was observed: twice the longest gap between signs of life in the recent window, never below the
 * configured loss timeout and never above the cap (the stall timeout). A device off the network
 * answers nothing, and a normal one (1 s gaps) keeps the configured timeout.
 */

/** Gaps kept per device: about half a minute of signs of life at one ping per second. */
export const LIVENESS_WINDOW = 32;
/** The limit is this many times the longest recent gap. */
export const LIVENESS_GAP_FACTOR = 2;

export class LivenessWindow {
  private readonly gaps: number[] = [];
  private lastMs: number;

  constructor(nowMs: number) {
    this.lastMs = nowMs;
  }

  /** A message or a pong came. */
  signal(nowMs: number): void {
    if (nowMs <= this.lastMs) return;
    this.gaps.push(nowMs - this.lastMs);
    if (this.gaps.length > LIVENESS_WINDOW) this.gaps.shift();
    this.lastMs = nowMs;
  }

  /** The last sign of life, ms. */
  get lastSignalMs(): number {
    return this.lastMs;
  }

  /** The longest gap between signs of life in the window (0 before the second signal). */
  get longestGapMs(): number {
    return this.gaps.length ? Math.max(...this.gaps) : 0;
  }

  /** Silence longer than this means lost: max(baseMs, factor x the longest recent gap), at most capMs. */
  limitMs(baseMs: number, capMs: number): number {
    return Math.max(baseMs, Math.min(capMs, LIVENESS_GAP_FACTOR * this.longestGapMs));
  }
}

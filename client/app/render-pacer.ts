/**
 * When the page draws its view. Drawing (the view's code, then the browser's style, layout and paint) takes
 * a slow phone's main thread 10-40 ms, and a ring frame that arrives meanwhile waits for it: traced on four
 * 0.4-core lab devices, a 4-stage ring spent ~5 ms per hop more than its links, with every page's main
 * thread drawing about a third of the time. So while this page's stage runs a request, the view is drawn
 * right after the stage hands a step's output on (its 'egress' phase ended): the stage's next input is then
 * most of a ring cycle away. At most once per `minGapMs`; when no hand-over comes for `maxGapMs` (a long
 * prefill upstream, a stall) it is drawn anyway. An idle page draws at the next animation frame.
 * (Measured on the lab, old and new code alternated A-B-B-A, the ring's per-token time did not change
 * beyond the run-to-run noise, 33-56 ms for the same code: the draws were not what the ring waited for.)
 */
export interface RenderPacerOptions {
  /** draws the view (the page's listeners) */
  draw: () => void;
  /** runs `cb` at the next animation frame (or soon where there is none) */
  frame: (cb: () => void) => void;
  now?: () => number;
  setTimer?: (cb: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
  /** while running: draws at least this far apart, ms */
  minGapMs?: number;
  /** while running: draws at most this far apart even without a hand-over, ms */
  maxGapMs?: number;
}

export class RenderPacer {
  private frameRequested = false;
  private timer: unknown = null;
  private drawnAt = -Infinity;
  private readonly now: () => number;
  private readonly setTimer: (cb: () => void, ms: number) => unknown;
  private readonly clearTimer: (t: unknown) => void;
  private readonly minGapMs: number;
  private readonly maxGapMs: number;

  constructor(private readonly opts: RenderPacerOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.setTimer = opts.setTimer ?? ((cb, ms) => setTimeout(cb, ms));
    this.clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
    this.minGapMs = opts.minGapMs ?? 250;
    this.maxGapMs = opts.maxGapMs ?? 1000;
  }

  /**
   * The state changed. `running`: this page's stage runs a request; `handedOver`: the change is a step's
   * output handed on (the ring's gap begins).
   */
  changed(running: boolean, handedOver: boolean): void {
    if (this.frameRequested) return; // a draw is coming at the next frame: it shows this change too
    const since = this.now() - this.drawnAt;
    if (!running || (handedOver && since >= this.minGapMs)) {
      this.requestFrame();
      return;
    }
    this.timer ??= this.setTimer(
      () => {
        this.timer = null;
        this.requestFrame();
      },
      Math.max(0, this.maxGapMs - since),
    );
  }

  private requestFrame(): void {
    if (this.timer !== null) {
      this.clearTimer(this.timer);
      this.timer = null;
    }
    this.frameRequested = true;
    this.opts.frame(() => {
      this.frameRequested = false;
      this.drawnAt = this.now();
      this.opts.draw();
    });
  }
}

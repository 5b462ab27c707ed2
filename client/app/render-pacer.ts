/**
 * When the page draws its view. Drawing (the view's code, then the browser's style, layout and paint) takes
 * a slow phone's main thread 10-40 ms, and a ring frame that arrives meanwhile waits for it: traced on four
 * 0.4-core lab devices, a 4-stage ring spent ~5 ms per hop more than its links, with every page's main
 * thread drawing about a third of the time. So while this page's stage runs a request, the view is drawn
 * right after the stage hands a step's output on (its 'egress' phase ended): the stage's next input is then
 * most of a ring cycle away. At most once per `minGapMs`; when no hand-over comes for `maxGapMs` (a long
 * prefill upstream, a stall) it is drawn anyway. An idle page draws at the next animation frame.
 *
 * In a ring of several stages a draw costs the device more than its main thread: each frame is also
 * composited and rastered by the browser's other threads and processes, all within the device's one CPU
 * budget, and a frame of a 0.4-core device outlasts the ring's gap and slows the next token's step. On the
 * lab's four 0.4-core devices (`npm run bench` decode rows, one session, load 1-3.6) the pipeline decoded at
 * 18.3-21.6 tok/s drawing every 250 ms, 24.4-25.5 tok/s not drawing at all while running and 26.4-29.0 tok/s
 * drawing once a second, while one page alone decoded at the same rate either way (bench/results/
 * e2e-s14-decode-*.json; at other loads the ring's rate varies by a quarter from run to run). So a stage in a ring draws at most every `ringMinGapMs` (and, without
 * hand-overs, every `ringMaxGapMs`): the text on a device lending its CPU to the ring streams once a second.
 */
export interface RenderPacerOptions {
  /** draws the view (the page's listeners) */
  draw: () => void;
  /** runs `cb` at the next animation frame (or soon where there is none) */
  frame: (cb: () => void) => void;
  now?: () => number;
  setTimer?: (cb: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
  /** while running alone (a single stage): draws at least this far apart, ms */
  minGapMs?: number;
  /** while running as one stage of a ring: draws at least this far apart, ms */
  ringMinGapMs?: number;
  /** while running as one stage of a ring: draws at most this far apart even without a hand-over, ms */
  ringMaxGapMs?: number;
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
  private readonly ringMinGapMs: number;
  private readonly maxGapMs: number;
  private readonly ringMaxGapMs: number;

  constructor(private readonly opts: RenderPacerOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.setTimer = opts.setTimer ?? ((cb, ms) => setTimeout(cb, ms));
    this.clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
    this.minGapMs = opts.minGapMs ?? 250;
    this.ringMinGapMs = opts.ringMinGapMs ?? 1000;
    this.maxGapMs = opts.maxGapMs ?? 1000;
    this.ringMaxGapMs = opts.ringMaxGapMs ?? 2000;
  }

  /**
   * The state changed. `stage`: this page's stage runs a request alone or as one stage of a ring, or runs
   * none; `handedOver`: the change is a step's output handed on (the ring's gap begins).
   */
  changed(stage: 'idle' | 'alone' | 'ring', handedOver: boolean): void {
    if (this.frameRequested) return; // a draw is coming at the next frame: it shows this change too
    const since = this.now() - this.drawnAt;
    const [minGap, maxGap] = stage === 'ring' ? [this.ringMinGapMs, this.ringMaxGapMs] : [this.minGapMs, this.maxGapMs];
    if (stage === 'idle' || (handedOver && since >= minGap)) {
      this.requestFrame();
      return;
    }
    this.timer ??= this.setTimer(
      () => {
        this.timer = null;
        this.requestFrame();
      },
      Math.max(0, maxGap - since),
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

/**
 * Runs `cb` once, at the next animation frame or after `fallbackMs`, whichever comes first. A browser
 * produces no frames for a window it thinks unseen (occluded, minimised, a headless compositor behind on
 * its work) while the page still says 'visible'; without the timer the view's text would stay as it was
 * until frames come back, though the state moved on.
 */
export function frameOrTimeout(
  cb: () => void,
  fallbackMs: number,
  requestFrame: (cb: () => void) => unknown,
  setTimer: (cb: () => void, ms: number) => unknown = (f, ms) => setTimeout(f, ms),
  clearTimer: (t: unknown) => void = (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
): void {
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    clearTimer(timer);
    cb();
  };
  const timer = setTimer(run, fallbackMs);
  requestFrame(run);
}

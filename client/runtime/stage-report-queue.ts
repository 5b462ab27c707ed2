/**
 * What the stage in the inference worker tells the main thread (its phases and tokens), batched. Each
 * message wakes the main thread, which then reduces the page's state and reports to the server; on a slow
 * device that work shares one CPU with the worker, so during decode it took CPU the ring was waiting for
 * (per step: a batch of phases, and a token on the last stage). So what a person or the server needs at
 * once goes at once: the cold start's and the prefill's phases (step 0), the first token (time to first
 * token) and the last; the decode steps' reports wait at most `maxDelayMs` and go as one message, and
 * everything held goes when the run ends (flush()). Nothing is dropped.
 */
import type { PhaseEvent, TokenEvent } from '../../shards/runtime/stage-peer.ts';

export interface StageReports {
  phases: PhaseEvent[];
  tokens: TokenEvent[];
}

export interface StageReportQueueOptions {
  /** delivers one batch */
  send: (batch: StageReports) => void;
  /** the longest a decode step's report waits, ms (default 100) */
  maxDelayMs?: number;
  setTimer?: (cb: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

export class StageReportQueue {
  private phases: PhaseEvent[] = [];
  private tokens: TokenEvent[] = [];
  private timer: unknown = null;
  /** an urgent report is queued: it goes at the end of the current task, with what came with it */
  private soon = false;
  private readonly maxDelayMs: number;
  private readonly setTimer: (cb: () => void, ms: number) => unknown;
  private readonly clearTimer: (t: unknown) => void;

  constructor(private readonly opts: StageReportQueueOptions) {
    this.maxDelayMs = opts.maxDelayMs ?? 100;
    this.setTimer = opts.setTimer ?? ((cb, ms) => setTimeout(cb, ms));
    this.clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
  }

  phase(e: PhaseEvent): void {
    this.phases.push(e);
    this.schedule(e.step === 0);
  }

  token(e: TokenEvent): void {
    this.tokens.push(e);
    this.schedule(e.index === 0 || e.done);
  }

  /** Sends everything held now (the run ended or failed); a no-op when nothing is. */
  flush(): void {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.soon = false;
    if (this.phases.length === 0 && this.tokens.length === 0) return;
    const batch = { phases: this.phases, tokens: this.tokens };
    this.phases = [];
    this.tokens = [];
    this.opts.send(batch);
  }

  private schedule(urgent: boolean): void {
    if (urgent) {
      // the rest of this step's synchronous work (its other phases) joins the batch
      if (!this.soon) queueMicrotask(() => this.soon && this.flush());
      this.soon = true;
      return;
    }
    if (this.timer === null && !this.soon) this.timer = this.setTimer(() => this.flush(), this.maxDelayMs);
  }
}

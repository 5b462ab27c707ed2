/**
 * What the stage in the inference worker tells the main thread (its phases and tokens), batched. Each
 * message wakes the main thread, which then reduces the page's state and reports to the server; on a slow
 * device that work shares one CPU with the worker, so during decode it took CPU the ring was waiting for
 * (per step: a batch of phases, and a token on the last stage). So what a person or the server needs at
 * once goes at once: the cold start's and the prefill's phases (step 0), the first token (time to first
 * token) and the last. A decode token waits at most `tokenDelayMs` (the text streams ~10 times a second);
 * a decode step's phases at most `phaseDelayMs` (the page redraws a ring stage once a second and reports
 * decode phases to the server once a second), or less when a token takes them along. Everything held
 * goes when the run ends (flush()). Nothing is dropped.
 */
import { EarliestDeadline, REAL_TIMERS, type TimerFunctions } from '../../core/earliest-deadline.ts';
import type { PhaseEvent, TokenEvent } from '../../shards/runtime/stage-peer.ts';

export interface StageReports {
  phases: PhaseEvent[];
  tokens: TokenEvent[];
}

export interface StageReportQueueOptions {
  /** delivers one batch */
  send: (batch: StageReports) => void;
  /** the longest a decode token waits, ms (default 100) */
  tokenDelayMs?: number;
  /** the longest a decode step's phases wait, ms (default 1000) */
  phaseDelayMs?: number;
  timers?: TimerFunctions;
}

export class StageReportQueue {
  private phases: PhaseEvent[] = [];
  private tokens: TokenEvent[] = [];
  private readonly due: EarliestDeadline;
  /** an urgent report is queued: it goes at the end of the current task, with what came with it */
  private soon = false;
  private readonly tokenDelayMs: number;
  private readonly phaseDelayMs: number;

  constructor(private readonly opts: StageReportQueueOptions) {
    this.tokenDelayMs = opts.tokenDelayMs ?? 100;
    this.phaseDelayMs = opts.phaseDelayMs ?? 1000;
    this.due = new EarliestDeadline(() => this.flush(), opts.timers ?? REAL_TIMERS);
  }

  phase(e: PhaseEvent): void {
    this.phases.push(e);
    this.schedule(e.step === 0, this.phaseDelayMs);
  }

  token(e: TokenEvent): void {
    this.tokens.push(e);
    this.schedule(e.index === 0 || e.done, this.tokenDelayMs);
  }

  /** Sends everything held now (the run ended or failed); a no-op when nothing is. */
  flush(): void {
    this.due.cancel();
    this.soon = false;
    if (this.phases.length === 0 && this.tokens.length === 0) return;
    const batch = { phases: this.phases, tokens: this.tokens };
    this.phases = [];
    this.tokens = [];
    this.opts.send(batch);
  }

  private schedule(urgent: boolean, delayMs: number): void {
    if (urgent) {
      // the rest of this step's synchronous work (its other phases) joins the batch
      if (!this.soon) queueMicrotask(() => this.soon && this.flush());
      this.soon = true;
      return;
    }
    if (!this.soon) this.due.within(delayMs);
  }
}

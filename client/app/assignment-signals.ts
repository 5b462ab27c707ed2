/**
 * One AbortController per assignment `seq` (app-state.ts): the shell hands `signalFor(seq)` to that
 * assignment's downloads and stage, and the reducer's `abort-assignment` effect fires it. Seqs only grow
 * and only the newest assignment is live, so an aborted seq (or an older one) always gets an aborted
 * signal, even when it asks after the abort.
 */
import { TandemError } from '../../core/errors.ts';

export class AssignmentSignals {
  private readonly live = new Map<number, AbortController>();
  /** every seq up to this one has been aborted */
  private abortedThrough = 0;

  signalFor(seq: number): AbortSignal {
    if (seq <= this.abortedThrough) return AbortSignal.abort(this.reason(seq));
    let controller = this.live.get(seq);
    if (!controller) {
      controller = new AbortController();
      this.live.set(seq, controller);
    }
    return controller.signal;
  }

  /** Fires the signal of `seq` and of every older assignment. */
  abort(seq: number): void {
    this.abortedThrough = Math.max(this.abortedThrough, seq);
    for (const [s, controller] of this.live) {
      if (s > seq) continue;
      controller.abort(this.reason(s));
      this.live.delete(s);
    }
  }

  private reason(seq: number): TandemError {
    return new TandemError('assignment-aborted', `Assignment ${seq} ended (a new plan, or this page left it).`);
  }
}

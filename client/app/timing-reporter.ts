/**
 * Batches this page's measured phases into `report-timings` messages: per request, a batch goes when it
 * holds 200 entries, when its oldest cold-start or prefill phase (step 0) has waited 250 ms, or when its
 * oldest decode phase has waited 1 s; everything left goes on `flush()` (end of a run). Keeps the
 * WebSocket quiet during decoding, where a phase ends every few milliseconds: the server relays every
 * report to every page of the session, whose main thread (on a ring device, sharing the CPU with the
 * stage) parses, validates and reduces it, and the calibration refits only from prefill phases and at
 * the end of the run. Each report says
 * whether the request's phases count from the server's send of its start (the page's clock read through
 * its heartbeat offset, to within `clockUncertaintyMs`) or from the page's own start of the run.
 */
import { EarliestDeadline, REAL_TIMERS, type TimerFunctions } from '../../core/earliest-deadline.ts';
import type { ClientMessage, TimingEntry } from '../../core/protocol.ts';

export class TimingReporter {
  private readonly pending = new Map<number, TimingEntry[]>();
  /** Per request whose phases are on the server's clock: the offset's bound, ms (the last few requests). */
  private readonly clocks = new Map<number, number>();
  private readonly due: EarliestDeadline;

  constructor(
    private readonly send: (m: Extract<ClientMessage, { type: 'report-timings' }>) => void,
    private readonly onError: (e: unknown) => void,
    private readonly maxBatch = 200,
    /** the longest a cold-start or prefill phase (step 0) waits, ms */
    private readonly delayMs = 250,
    /** the longest a decode phase waits, ms */
    private readonly decodeDelayMs = 1000,
    timers: TimerFunctions = REAL_TIMERS,
  ) {
    this.due = new EarliestDeadline(() => this.flush(), timers);
  }

  /** `requestId`'s phases count from the server's send of start, to within `uncertaintyMs`; null: they do not. */
  setClock(requestId: number, uncertaintyMs: number | null): void {
    this.clocks.delete(requestId);
    if (uncertaintyMs !== null) this.clocks.set(requestId, uncertaintyMs);
    while (this.clocks.size > 64) this.clocks.delete(this.clocks.keys().next().value!);
  }

  add(requestId: number, entry: TimingEntry): void {
    const list = this.pending.get(requestId) ?? [];
    list.push(entry);
    this.pending.set(requestId, list);
    if (list.length >= this.maxBatch) this.flush();
    else this.due.within(entry.step === 0 ? this.delayMs : this.decodeDelayMs);
  }

  flush(): void {
    this.due.cancel();
    for (const [requestId, batch] of this.pending) {
      if (!batch.length) continue;
      try {
        const clock = this.clocks.get(requestId);
        this.send({
          type: 'report-timings',
          requestId,
          timings: batch,
          ...(clock !== undefined ? { clockUncertaintyMs: clock } : {}),
        });
      } catch (e) {
        this.onError(e);
      }
    }
    this.pending.clear();
  }
}

/**
 * Batches this page's measured phases into `report-timings` messages: one message per request every
 * 250 ms or every 200 entries, whichever comes first, and everything left on `flush()` (end of a run).
 * Keeps the WebSocket quiet during decoding, where a phase ends every few milliseconds. Each report says
 * whether the request's phases count from the server's send of its start (the page's clock read through
 * its heartbeat offset, to within `clockUncertaintyMs`) or from the page's own start of the run.
 */
import type { ClientMessage, TimingEntry } from '../../core/protocol.ts';

export class TimingReporter {
  private readonly pending = new Map<number, TimingEntry[]>();
  /** Per request whose phases are on the server's clock: the offset's bound, ms (the last few requests). */
  private readonly clocks = new Map<number, number>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly send: (m: Extract<ClientMessage, { type: 'report-timings' }>) => void,
    private readonly onError: (e: unknown) => void,
    private readonly maxBatch = 200,
    private readonly delayMs = 250,
  ) {}

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
    else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
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

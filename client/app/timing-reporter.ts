/**
 * Batches this page's measured phases into `report-timings` messages: one message per request every
 * 250 ms or every 200 entries, whichever comes first, and everything left on `flush()` (end of a run).
 * Keeps the WebSocket quiet during decoding, where a phase ends every few milliseconds.
 */
import type { ClientMessage, TimingEntry } from '../../core/protocol.ts';

export class TimingReporter {
  private readonly pending = new Map<number, TimingEntry[]>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly send: (m: Extract<ClientMessage, { type: 'report-timings' }>) => void,
    private readonly onError: (e: unknown) => void,
    private readonly maxBatch = 200,
    private readonly delayMs = 250,
  ) {}

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
        this.send({ type: 'report-timings', requestId, timings: batch });
      } catch (e) {
        this.onError(e);
      }
    }
    this.pending.clear();
  }
}

/**
 * How the last stage's tokens reach the server. Each report costs a WebSocket frame and an ack, and the
 * server relays each as an `output` to every page of the session, where it is parsed, validated and
 * reduced on the main thread: per token, on every device, while the ring decodes (the main thread of a
 * slow phone also carries the ring's frames). So the first token goes at once (time to first token) and
 * the last at once (done), and the ones between are held for at most `maxDelayMs` and sent as one report:
 * the text still streams ~10 times a second, the server and the pages handle one message per batch.
 * Nothing is dropped: a held batch goes out on flush() (the run ended or failed) at the latest.
 */
import type { TokenReport } from './stage-runner.ts';

export interface TokenReportBatcherOptions {
  /** the longest a token waits for its batch, ms (default 100) */
  maxDelayMs?: number;
  setTimer?: (cb: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

interface Held {
  report: TokenReport;
  send: (report: TokenReport) => void;
  timer: unknown;
}

export class TokenReportBatcher {
  private readonly held = new Map<number, Held>();
  /** requests whose first report went out (cleared when their last one did) */
  private readonly started = new Set<number>();
  private readonly maxDelayMs: number;
  private readonly setTimer: (cb: () => void, ms: number) => unknown;
  private readonly clearTimer: (t: unknown) => void;

  constructor(opts: TokenReportBatcherOptions = {}) {
    this.maxDelayMs = opts.maxDelayMs ?? 100;
    this.setTimer = opts.setTimer ?? ((cb, ms) => setTimeout(cb, ms));
    this.clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
  }

  /** A report of `requestId`; `send` delivers it (or the batch it joins). */
  push(requestId: number, report: TokenReport, send: (report: TokenReport) => void): void {
    const held = this.held.get(requestId);
    const merged: TokenReport = held ? mergeReports(held.report, report) : report;
    if (!this.started.has(requestId) || report.done) {
      if (held) {
        this.clearTimer(held.timer);
        this.held.delete(requestId);
      }
      this.deliver(requestId, merged, send);
      return;
    }
    if (held) {
      held.report = merged;
      held.send = send;
      return;
    }
    const timer = this.setTimer(() => this.flush(requestId), this.maxDelayMs);
    this.held.set(requestId, { report: merged, send, timer });
  }

  /** Sends what is held for `requestId` now (the run ended or failed); a no-op when nothing is. */
  flush(requestId: number): void {
    const held = this.held.get(requestId);
    if (!held) return;
    this.clearTimer(held.timer);
    this.held.delete(requestId);
    this.deliver(requestId, held.report, held.send);
  }

  private deliver(requestId: number, report: TokenReport, send: (report: TokenReport) => void): void {
    if (report.done) this.started.delete(requestId);
    else this.started.add(requestId);
    send(report);
  }
}

/** `a` then `b` as one report: tokens and text in order, the later count and ending. */
function mergeReports(a: TokenReport, b: TokenReport): TokenReport {
  return {
    tokenIds: [...a.tokenIds, ...b.tokenIds],
    text: a.text + b.text,
    generated: b.generated,
    done: b.done,
    ...(b.finishReason ? { finishReason: b.finishReason } : {}),
  };
}

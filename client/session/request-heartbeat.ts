/**
 * Heartbeats while a request runs (failover, issue 13): the coordinator declares a stage lost when it is
 * silent for its loss timeout (~3 s) during a request, so a page holding a stage sends a heartbeat every
 * `requestHeartbeatIntervalMs` (from `joined`, ~1 s) from the request's start until its end, on top of
 * the session's slow heartbeat. One timer, however many requests are active.
 */
export class RequestHeartbeat {
  private timer: ReturnType<typeof setInterval> | null = null;
  private intervalMs = 1_000;
  private readonly active = new Set<number>();

  /** `send` sends one heartbeat; it may throw when the socket is down (the reconnect path takes over). */
  constructor(private readonly send: () => void) {}

  /** The interval the coordinator asks for (joined.requestHeartbeatIntervalMs). */
  setInterval(ms: number): void {
    this.intervalMs = Math.max(100, Math.min(ms, 60_000));
    if (this.timer !== null) {
      this.stopTimer();
      this.startTimer();
    }
  }

  /** A request with this page as a stage started (or continues after a repair). */
  begin(requestId: number): void {
    this.active.add(requestId);
    if (this.timer === null) {
      this.beat(); // at once: the request's first seconds (session create) are when pages go quiet
      this.startTimer();
    }
  }

  /** The request ended (done, failed, cancelled). */
  end(requestId: number): void {
    this.active.delete(requestId);
    if (this.active.size === 0) this.stopTimer();
  }

  stopAll(): void {
    this.active.clear();
    this.stopTimer();
  }

  get running(): boolean {
    return this.timer !== null;
  }

  private beat(): void {
    try {
      this.send();
    } catch {
      // not connected: nothing to do until the socket is back
    }
  }

  private startTimer(): void {
    this.timer = setInterval(() => this.beat(), this.intervalMs);
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

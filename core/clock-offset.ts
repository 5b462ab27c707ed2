/**
 * This process's clock against the server's, from the heartbeat round trips (as NTP does): a heartbeat
 * carries the page's send time, its ack the server's time and that send time back, so
 *
 *   offset = server time - (sent + received) / 2,   off by at most half the round trip.
 *
 * Of the last `window` samples the one with the shortest round trip is kept: a page whose main thread
 * read an ack late only made that sample's trip longer. With it the pages of a session time their phases
 * from one instant, the server's send of a request's start, instead of each from its own arrival of it,
 * so that a hand-over's time can be read across two pages (planner/phase-comparison.ts).
 */

/** ms since the epoch on this process's monotonic clock (heartbeats and the offset use this one clock). */
export function epochNowMs(): number {
  return performance.timeOrigin + performance.now();
}

interface Sample {
  roundTripMs: number;
  offsetMs: number;
}

export interface OffsetEstimate {
  /** server clock - this clock, ms */
  offsetMs: number;
  /** half the kept sample's round trip: the estimate's bound */
  uncertaintyMs: number;
}

export class ClockOffset {
  private readonly samples: Sample[] = [];

  constructor(private readonly window = 12) {}

  /** One round trip: sent and received on this clock (epochNowMs), `serverMs` the server's time in between. */
  sample(sentMs: number, serverMs: number, receivedMs: number): void {
    const roundTripMs = receivedMs - sentMs;
    if (!Number.isFinite(roundTripMs) || roundTripMs < 0 || !Number.isFinite(serverMs)) return;
    this.samples.push({ roundTripMs, offsetMs: serverMs - (sentMs + receivedMs) / 2 });
    if (this.samples.length > this.window) this.samples.shift();
  }

  /** The estimate from the shortest round trip kept; null before the first sample. */
  get estimate(): OffsetEstimate | null {
    if (this.samples.length === 0) return null;
    const best = this.samples.reduce((a, b) => (b.roundTripMs < a.roundTripMs ? b : a));
    return { offsetMs: best.offsetMs, uncertaintyMs: best.roundTripMs / 2 };
  }

  /**
   * The performance.now() of this process at server time `serverMs`; null without an estimate or with one
   * looser than `maxUncertaintyMs`.
   */
  localTimeOf(serverMs: number, maxUncertaintyMs = 50): number | null {
    const e = this.estimate;
    if (!e || e.uncertaintyMs > maxUncertaintyMs) return null;
    return serverMs - e.offsetMs - performance.timeOrigin;
  }

  /**
   * The origin of a request whose start the server sent at `serverMs`, for a run beginning now on this
   * process (requestOrigin); null without an estimate within `maxUncertaintyMs`.
   */
  originOf(serverMs: number, maxUncertaintyMs = 50): RequestOrigin | null {
    const e = this.estimate;
    const mapped = this.localTimeOf(serverMs, maxUncertaintyMs);
    return e && mapped !== null ? requestOrigin(mapped, e.uncertaintyMs, performance.now(), maxUncertaintyMs) : null;
  }
}

/** How far before a run a request's origin may lie (an older one is a broken clock, not a queue). */
const MAX_ORIGIN_AGE_MS = 600_000;

/** Where a run times its phases from, on this process's performance.now(), and how far that may be off. */
export interface RequestOrigin {
  originMs: number;
  boundMs: number;
}

/**
 * The origin of a run at `nowMs` from its start's send mapped onto this clock (`mappedMs`, off by at most
 * `uncertaintyMs`). A start handled at once (its stage warm, its page idle) maps to within the bound of
 * now, so it may map a little into the future: that send was now, and the bound grows to what the
 * estimate was off by. A send mapped more than `maxAheadMs` ahead, or older than MAX_ORIGIN_AGE_MS, says
 * the clock is broken: none.
 */
export function requestOrigin(
  mappedMs: number,
  uncertaintyMs: number,
  nowMs: number,
  maxAheadMs = 50,
): RequestOrigin | null {
  const ahead = mappedMs - nowMs;
  if (!Number.isFinite(mappedMs) || ahead > maxAheadMs || -ahead > MAX_ORIGIN_AGE_MS) return null;
  return { originMs: Math.min(mappedMs, nowMs), boundMs: Math.max(uncertaintyMs, ahead) };
}

/** Whether a run at `nowMs` times its phases from `originMs` (shards/runtime/stage-peer.ts StartRequest). */
export function usableOrigin(originMs: number, nowMs: number): boolean {
  return originMs <= nowMs && nowMs - originMs <= MAX_ORIGIN_AGE_MS;
}

/**
 * A page's clock bound over its timing reports of one request: the largest `clockUncertaintyMs` so far,
 * null once one report counted from the page's own start. `had` is undefined before the first report.
 */
export function mergeClockBound(had: number | null | undefined, reported: number | undefined): number | null {
  return had === null || reported === undefined ? null : Math.max(had ?? 0, reported);
}

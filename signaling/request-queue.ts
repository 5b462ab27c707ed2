/**
 * The per-session request queue: one request runs on a pipeline at a time; the others wait here in
 * arrival order (host go's and HTTP API requests alike). The depth is bounded so a flood of API
 * clients gets told to come back later (HTTP 429 with Retry-After) instead of piling up.
 *
 * Pure: no I/O, no clock; the coordinator owns one per session.
 */

export class RequestQueue<T> {
  private readonly items: T[] = [];

  /** `depth`: requests that may wait (the running one is not counted). */
  constructor(readonly depth: number) {
    if (!Number.isInteger(depth) || depth < 0) throw new RangeError(`a queue depth is an integer >= 0, not ${depth}`);
  }

  get length(): number {
    return this.items.length;
  }

  get full(): boolean {
    return this.items.length >= this.depth;
  }

  /** Appends `item`; returns its 1-based position, or null when the queue is full. */
  push(item: T): number | null {
    if (this.full) return null;
    this.items.push(item);
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  /** Removes the first item matching `pred` (a client gave up while waiting); returns it. */
  remove(pred: (item: T) => boolean): T | undefined {
    const i = this.items.findIndex(pred);
    return i >= 0 ? this.items.splice(i, 1)[0] : undefined;
  }

  /** Empties the queue, returning what waited (the session ended). */
  drain(): T[] {
    return this.items.splice(0, this.items.length);
  }
}

/**
 * Seconds a client turned away should wait before retrying: the requests ahead of it times the mean
 * duration of recent requests, at least 1 s (Retry-After is whole seconds).
 */
export function retryAfterSeconds(waiting: number, recentDurationsMs: readonly number[]): number {
  const mean = recentDurationsMs.length
    ? recentDurationsMs.reduce((a, b) => a + b, 0) / recentDurationsMs.length
    : 1000;
  return Math.max(1, Math.ceil(((waiting + 1) * mean) / 1000));
}

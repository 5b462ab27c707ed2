/**
 * Waits for items that have not arrived yet: each wait has a predicate and a timeout, and arriving
 * items are offered to the waits in the order they began. The waiting primitive of the protocol
 * client (core/protocol-client.ts); any inbox with "wait for the one I need, or time out, or fail
 * when the link dies" fits it (a stage peer's frame inbox is the same shape).
 *
 * Two kinds of wait:
 * - 'take': the item is spoken for. The first taking wait that matches resolves with it, later taking
 *   waits do not see it, and `offer` returns true so the owner can mark it consumed.
 * - 'watch': every watching wait that matches resolves with it; it stays available to others.
 *
 * Items that arrived before the wait are the owner's business (look in the log first, then wait).
 */

export type WaitMode = 'take' | 'watch';

export interface WaitOptions {
  mode: WaitMode;
  /** ms; must be > 0 and finite. */
  timeoutMs: number;
  /** The rejection when the time is up; built lazily so it can describe what did arrive. */
  onTimeout: () => Error;
  /** Aborting it rejects the wait with the signal's reason (the caller gave up). */
  signal?: AbortSignal;
}

interface Waiter<T> {
  mode: WaitMode;
  /** Resolves the wait when the item matches; says whether it did. */
  accept: (item: T) => boolean;
  reject: (err: Error) => void;
}

export class WaitList<T> {
  /** Insertion-ordered: offers go to the oldest wait first. */
  private readonly waiters = new Set<Waiter<T>>();

  /** How many waits are pending. */
  get size(): number {
    return this.waiters.size;
  }

  /** Resolves with the first offered item that `match` accepts; rejects on timeout or `failAll`. */
  wait<U extends T>(match: (item: T) => item is U, options: WaitOptions): Promise<U>;
  wait(match: (item: T) => boolean, options: WaitOptions): Promise<T>;
  wait(match: (item: T) => boolean, options: WaitOptions): Promise<T> {
    if (!(options.timeoutMs > 0) || !Number.isFinite(options.timeoutMs))
      throw new RangeError(`A wait needs a finite timeout > 0 ms, got ${options.timeoutMs}.`);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(reasonOf(signal));
    return new Promise<T>((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(waiter);
      };
      const timer = setTimeout(() => {
        settle();
        reject(options.onTimeout());
      }, options.timeoutMs);
      const onAbort = (): void => waiter.reject(reasonOf(signal!));
      const waiter: Waiter<T> = {
        mode: options.mode,
        accept: (item) => {
          if (!match(item)) return false;
          settle();
          resolve(item);
          return true;
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort);
    });
  }

  /** Offers an arriving item to every watching wait and to the oldest matching taking wait; true when one took it. */
  offer(item: T): boolean {
    let taken = false;
    for (const w of [...this.waiters]) {
      if (taken && w.mode === 'take') continue;
      if (w.accept(item) && w.mode === 'take') taken = true;
    }
    return taken;
  }

  /** Rejects every pending wait with `err` (the connection closed, the peer failed). */
  failAll(err: Error): void {
    for (const w of [...this.waiters]) w.reject(err);
  }
}

function reasonOf(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error(`wait aborted: ${String(signal.reason)}`);
}

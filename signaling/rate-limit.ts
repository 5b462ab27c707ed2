/** Token-bucket rate limiting keyed by a string (a client address). Pure: time is passed in. */

export interface RateLimit {
  /** Tokens available at once. */
  burst: number;
  /** Tokens refilled per second. */
  perSecond: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    /** Most keys remembered; beyond it, full buckets are forgotten first. */
    private readonly maxKeys = 10_000,
  ) {}

  /** Take `cost` tokens for `key` at `nowMs`; false when the key has too few left. */
  take(key: string, nowMs: number, cost = 1): boolean {
    const bucket = this.refill(key, nowMs);
    if (bucket.tokens < cost) return false;
    bucket.tokens -= cost;
    return true;
  }

  /** Whether `key` has at least `cost` tokens now (takes none). */
  has(key: string, nowMs: number, cost = 1): boolean {
    const bucket = this.buckets.get(key);
    if (!bucket) return this.limit.burst >= cost;
    const tokens = Math.min(
      this.limit.burst,
      bucket.tokens + (Math.max(0, nowMs - bucket.updatedMs) / 1000) * this.limit.perSecond,
    );
    return tokens >= cost;
  }

  /** Drop buckets that have refilled completely (they carry no state). */
  sweep(nowMs: number): void {
    for (const [key, bucket] of this.buckets) {
      const tokens = Math.min(
        this.limit.burst,
        bucket.tokens + ((nowMs - bucket.updatedMs) / 1000) * this.limit.perSecond,
      );
      if (tokens >= this.limit.burst) this.buckets.delete(key);
    }
  }

  get size(): number {
    return this.buckets.size;
  }

  private refill(key: string, nowMs: number): Bucket {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.sweep(nowMs);
      bucket = { tokens: this.limit.burst, updatedMs: nowMs };
      this.buckets.set(key, bucket);
      return bucket;
    }
    const elapsedSec = Math.max(0, nowMs - bucket.updatedMs) / 1000;
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + elapsedSec * this.limit.perSecond);
    bucket.updatedMs = nowMs;
    return bucket;
  }
}

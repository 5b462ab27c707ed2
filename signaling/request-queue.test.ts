import { describe, expect, it } from 'vitest';
import { RequestQueue, retryAfterSeconds } from './request-queue.ts';

describe('RequestQueue', () => {
  it('keeps arrival order up to its depth and refuses beyond', () => {
    const q = new RequestQueue<string>(2);
    expect(q.push('a')).toBe(1);
    expect(q.push('b')).toBe(2);
    expect(q.full).toBe(true);
    expect(q.push('c')).toBeNull();
    expect(q.shift()).toBe('a');
    expect(q.push('c')).toBe(2);
    expect(q.remove((x) => x === 'b')).toBe('b');
    expect(q.remove((x) => x === 'zz')).toBeUndefined();
    expect(q.drain()).toEqual(['c']);
    expect(q.length).toBe(0);
  });

  it('rejects a negative or fractional depth', () => {
    expect(() => new RequestQueue(-1)).toThrow(RangeError);
    expect(() => new RequestQueue(1.5)).toThrow(RangeError);
  });

  it('Retry-After grows with the requests ahead and is at least 1 s', () => {
    expect(retryAfterSeconds(0, [])).toBe(1);
    expect(retryAfterSeconds(2, [2000, 4000])).toBe(9);
    expect(retryAfterSeconds(0, [10])).toBe(1);
  });
});

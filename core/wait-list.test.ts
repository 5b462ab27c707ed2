import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WaitList } from './wait-list.ts';

const forever = { timeoutMs: 60_000, onTimeout: () => new Error('timed out') };

describe('WaitList', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('offers an item to every watcher and to the oldest matching taker only', async () => {
    const list = new WaitList<number>();
    const even = list.wait((n) => n % 2 === 0, { ...forever, mode: 'take' });
    const anyWatch = list.wait(() => true, { ...forever, mode: 'watch' });
    const anyTake = list.wait(() => true, { ...forever, mode: 'take' });
    const laterTake = list.wait(() => true, { ...forever, mode: 'take' });
    expect(list.offer(3)).toBe(true); // anyTake took it: `even` did not match, laterTake came after
    expect(await anyWatch).toBe(3);
    expect(await anyTake).toBe(3);
    expect(list.size).toBe(2);
    expect(list.offer(4)).toBe(true);
    expect(await even).toBe(4);
    expect(list.offer(5)).toBe(true);
    expect(await laterTake).toBe(5);
    expect(list.offer(6)).toBe(false);
    expect(list.size).toBe(0);
  });

  it('rejects on timeout, on failAll and on abort, and forgets the wait each time', async () => {
    const list = new WaitList<string>();
    const late = list.wait(() => true, { mode: 'take', timeoutMs: 100, onTimeout: () => new Error('late') });
    vi.advanceTimersByTime(100);
    await expect(late).rejects.toThrow('late');
    expect(list.size).toBe(0);

    const controller = new AbortController();
    const aborted = list.wait(() => true, { ...forever, mode: 'take', signal: controller.signal });
    const failed = list.wait(() => true, { ...forever, mode: 'watch' });
    controller.abort(new Error('gave up'));
    await expect(aborted).rejects.toThrow('gave up');
    list.failAll(new Error('closed'));
    await expect(failed).rejects.toThrow('closed');
    expect(list.size).toBe(0);
    expect(list.offer('x')).toBe(false);
    await expect(list.wait(() => true, { ...forever, mode: 'take', signal: controller.signal })).rejects.toThrow(
      'gave up',
    );
  });

  it('refuses a timeout that is not a finite positive number', () => {
    const list = new WaitList<number>();
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => list.wait(() => true, { ...forever, timeoutMs, mode: 'take' })).toThrow(RangeError);
  });
});

import { describe, expect, it } from 'vitest';
import { HoldPoints } from './hold-points.ts';

/** Whether `p` has settled after the microtasks queued so far. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setTimeout(r, 0));
  return done;
}

describe('HoldPoints', () => {
  it('waits only at armed counts, until released; a released count never holds again', async () => {
    const h = new HoldPoints([2]);
    expect(await settled(h.wait(0))).toBe(true);
    expect(await settled(h.wait(1))).toBe(true);
    const held = h.wait(2);
    expect(await settled(held)).toBe(false);
    expect(h.holding()).toBe(2);
    h.release(7); // another count: nothing moves
    expect(await settled(held)).toBe(false);
    h.release(2);
    expect(await settled(held)).toBe(true);
    expect(h.holding()).toBeNull();
    expect(await settled(h.wait(2))).toBe(true);
  });

  it('arm adds counts (for the next request); without any, nothing ever waits', async () => {
    const h = new HoldPoints([]);
    expect(await settled(h.wait(5))).toBe(true);
    h.arm([5, -1, 2.5]);
    const held = h.wait(5);
    expect(await settled(held)).toBe(false);
    expect(await settled(h.wait(2))).toBe(true); // 2.5 and -1 were not armed
    h.release(5);
    expect(await settled(held)).toBe(true);
  });

  it('a newer wait lets an overtaken one go on (one stage runs at a time)', async () => {
    const h = new HoldPoints([4]);
    const first = h.wait(4);
    const second = h.wait(4);
    expect(await settled(first)).toBe(true);
    expect(await settled(second)).toBe(false);
    h.release(4);
    expect(await settled(second)).toBe(true);
  });
});

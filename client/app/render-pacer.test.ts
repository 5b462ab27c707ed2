import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/manual-clock.ts';
import { frameOrTimeout, RenderPacer } from './render-pacer.ts';

/** A pacer on a hand-driven clock: frames and timers run only when the test says so. */
function pacer() {
  const clock = new ManualClock();
  const draws: number[] = [];
  let frames: (() => void)[] = [];
  const p = new RenderPacer({
    draw: () => draws.push(clock.now()),
    frame: (cb) => frames.push(cb),
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    minGapMs: 250,
    maxGapMs: 1000,
    ringMinGapMs: 1000,
    ringMaxGapMs: 2000,
  });
  return {
    p,
    draws,
    /** moves the clock, firing due timers, then runs the pending animation frames */
    advance(ms: number) {
      clock.advance(ms);
      const due = frames;
      frames = [];
      for (const f of due) f();
    },
    pendingTimers: () => clock.pendingTimers,
  };
}

describe('RenderPacer', () => {
  it('draws an idle page at the next frame, once for several changes', () => {
    const r = pacer();
    r.p.changed('idle', false);
    r.p.changed('idle', false);
    r.advance(16);
    expect(r.draws).toEqual([16]);
    r.p.changed('idle', false);
    r.advance(16);
    expect(r.draws).toEqual([16, 32]);
  });

  it('while running, draws right after a hand-over, never closer than minGapMs', () => {
    const r = pacer();
    r.p.changed('alone', true); // first hand-over: nothing drawn yet
    r.advance(5);
    expect(r.draws).toEqual([5]);
    // phases and tokens between hand-overs do not draw
    r.p.changed('alone', false);
    r.advance(100);
    expect(r.draws).toEqual([5]);
    // a hand-over 105 ms after the last draw is too soon; one at 305 ms draws
    r.p.changed('alone', true);
    r.advance(200);
    expect(r.draws).toEqual([5]);
    r.p.changed('alone', true);
    r.advance(1);
    expect(r.draws).toEqual([5, 306]);
  });

  it('while running without hand-overs (a long prefill upstream), still draws every maxGapMs', () => {
    const r = pacer();
    r.p.changed('idle', false);
    r.advance(10);
    expect(r.draws).toEqual([10]);
    r.p.changed('alone', false);
    r.advance(500);
    r.p.changed('alone', false); // the fallback timer is already set: no second one
    expect(r.pendingTimers()).toBe(1);
    r.advance(499);
    expect(r.draws).toEqual([10]);
    r.advance(1);
    expect(r.draws).toEqual([10, 1010]);
  });

  it('a hand-over before the fallback draws at once and cancels the fallback', () => {
    const r = pacer();
    r.p.changed('alone', false);
    expect(r.pendingTimers()).toBe(1); // never drawn: the fallback is due at once
    r.p.changed('alone', true);
    expect(r.pendingTimers()).toBe(0);
    r.advance(3);
    expect(r.draws).toEqual([3]);
    // the request ends: the page is idle again and draws at the next frame
    r.p.changed('alone', false);
    r.advance(50);
    r.p.changed('idle', false);
    expect(r.pendingTimers()).toBe(0);
    r.advance(16);
    expect(r.draws).toEqual([3, 69]);
  });

  it('as one stage of a ring, draws after a hand-over at most every ringMinGapMs, else every ringMaxGapMs', () => {
    const r = pacer();
    r.p.changed('ring', true);
    r.advance(2);
    expect(r.draws).toEqual([2]);
    // hand-overs every 40 ms (at 22, 62, ... ms: a decode ring): the first one 1000 ms after the last draw
    // (at 1022) draws at the next frame
    for (let t = 0; t < 30; t++) {
      r.p.changed('ring', false); // the tokens and phases between hand-overs
      r.advance(20);
      r.p.changed('ring', true);
      r.advance(20);
    }
    expect(r.draws).toEqual([2, 1042]);
    // no hand-over after that (a long prefill upstream): the fallback draws ringMaxGapMs after the last draw
    r.p.changed('ring', false);
    r.advance(3041 - 1202);
    expect(r.draws).toEqual([2, 1042]);
    r.advance(1);
    expect(r.draws).toEqual([2, 1042, 3042]);
  });
});

describe('frameOrTimeout', () => {
  it('runs at the frame when one comes, at the timer when none does, and never twice', () => {
    const clock = new ManualClock();
    const frames: (() => void)[] = [];
    const runs: number[] = [];
    const draw = () =>
      frameOrTimeout(
        () => runs.push(clock.now()),
        1000,
        (cb) => frames.push(cb),
        clock.setTimer,
        clock.clearTimer,
      );
    draw();
    clock.advance(16);
    frames.shift()!();
    clock.advance(2000);
    expect(runs).toEqual([16]); // the frame's; the timer was cleared

    draw();
    clock.advance(1000);
    expect(runs).toEqual([16, 3016]); // no frame came: the timer drew
    frames.shift()!(); // the late frame changes nothing
    expect(runs).toEqual([16, 3016]);
  });
});

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/manual-clock.ts';
import { TimingReporter } from './timing-reporter.ts';
import type { TimingEntry } from '../../core/protocol.ts';

const entry = (step: number): TimingEntry => ({ phase: 'compute', step, startMs: step, endMs: step + 1 });

describe('TimingReporter', () => {
  it('batches by size and by time, per request, and flushes the rest', () => {
    const clock = new ManualClock();
    const sent: { requestId: number; n: number; at: number }[] = [];
    const r = new TimingReporter(
      (m) => sent.push({ requestId: m.requestId, n: m.timings.length, at: clock.now() }),
      () => undefined,
      3,
      20,
      100,
      clock,
    );
    for (let i = 0; i < 3; i++) r.add(1, entry(0));
    expect(sent).toEqual([{ requestId: 1, n: 3, at: 0 }]); // full batch goes at once
    r.add(1, entry(0));
    r.add(2, entry(0));
    expect(sent).toHaveLength(1);
    clock.advance(20); // the timer sends the partial batches
    expect(sent.slice(1).sort((a, b) => a.requestId - b.requestId)).toEqual([
      { requestId: 1, n: 1, at: 20 },
      { requestId: 2, n: 1, at: 20 },
    ]);
    r.add(3, entry(0));
    r.flush();
    expect(sent.at(-1)).toEqual({ requestId: 3, n: 1, at: 20 });
    r.flush();
    expect(sent).toHaveLength(4); // nothing twice
    expect(clock.pendingTimers).toBe(0);
  });

  it('holds decode phases longer than cold-start and prefill ones, and sends them with any that go sooner', () => {
    const clock = new ManualClock();
    const sent: { steps: number[]; at: number }[] = [];
    const r = new TimingReporter(
      (m) => sent.push({ steps: m.timings.map((t) => t.step), at: clock.now() }),
      () => undefined,
      200,
      250,
      1000,
      clock,
    );
    r.add(1, entry(1));
    clock.advance(999);
    r.add(1, entry(2));
    expect(sent).toEqual([]); // decode steps keep the socket quiet for a second
    clock.advance(1);
    expect(sent).toEqual([{ steps: [1, 2], at: 1000 }]);
    r.add(1, entry(3));
    clock.advance(100);
    r.add(1, entry(0)); // a prefill phase (a repair's new run) must not wait a second
    clock.advance(250);
    expect(sent).toEqual([
      { steps: [1, 2], at: 1000 },
      { steps: [3, 0], at: 1350 },
    ]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('reports a failing send without throwing', () => {
    const errors: unknown[] = [];
    const r = new TimingReporter(
      () => {
        throw new Error('offline');
      },
      (e) => errors.push(e),
      1,
    );
    expect(() => r.add(1, entry(0))).not.toThrow();
    expect(errors).toHaveLength(1);
  });

  it("says which requests' phases are on the server's clock, and how closely", () => {
    const sent: { requestId: number; clock: number | undefined }[] = [];
    const r = new TimingReporter(
      (m) => sent.push({ requestId: m.requestId, clock: m.clockUncertaintyMs }),
      () => undefined,
    );
    r.setClock(1, 1.5);
    r.setClock(2, null);
    r.add(1, entry(0));
    r.add(2, entry(0));
    r.add(3, entry(0)); // never set: from the page's own start
    r.flush();
    expect(sent.sort((a, b) => a.requestId - b.requestId)).toEqual([
      { requestId: 1, clock: 1.5 },
      { requestId: 2, clock: undefined },
      { requestId: 3, clock: undefined },
    ]);
    r.setClock(1, null); // a second run of request 1 (a repair) on its own start
    r.add(1, entry(1));
    r.flush();
    expect(sent.at(-1)).toEqual({ requestId: 1, clock: undefined });
  });
});

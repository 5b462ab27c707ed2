import { describe, expect, it } from 'vitest';
import type { ServerMessageOf, TimingEntry } from '../core/protocol.ts';
import { HeldTimings, RELAY_CHUNK, splitRelay } from './timings-relay.ts';

const entry = (step: number, startMs: number): TimingEntry => ({ phase: 'compute', step, startMs, endMs: startMs + 1 });
const message = (peerId: string, timings: TimingEntry[], requestId = 1): ServerMessageOf<'timings'> => ({
  type: 'timings',
  requestId,
  planId: 'P-1',
  peerId,
  timings,
});

describe('splitRelay', () => {
  it("sends a running request's step-0 phases to its ring, everything to the others, and holds the decode ones", () => {
    const m = message('a', [entry(0, 0), entry(1, 5), entry(0, 2), entry(2, 9)]);
    const split = splitRelay(m, true);
    expect(split.others).toEqual(m);
    expect(split.ring?.timings).toEqual([entry(0, 0), entry(0, 2)]);
    expect(split.held?.timings).toEqual([entry(1, 5), entry(2, 9)]);
    // nothing for the ring now when the report is all decode; nothing held when it is all step 0
    expect(splitRelay(message('a', [entry(3, 1)]), true).ring).toBe(null);
    expect(splitRelay(message('a', [entry(0, 1)]), true).held).toBe(null);
  });

  it('sends everything to everyone once the request has ended', () => {
    const m = message('a', [entry(0, 0), entry(4, 5)]);
    expect(splitRelay(m, false)).toEqual({ ring: m, others: m, held: null });
  });
});

describe('HeldTimings', () => {
  it('keeps each page and wire id apart, in arrival order, and drains in chunks a page may report', () => {
    const held = new HeldTimings();
    const many = Array.from({ length: RELAY_CHUNK + 3 }, (_, i) => entry(1 + i, i));
    held.add(message('a', many.slice(0, 10)));
    held.add(message('b', [entry(1, 100)]));
    held.add({ ...message('a', many.slice(10)), clockUncertaintyMs: 2 });
    held.add(message('a', [entry(1, 7)], 2)); // a continuation's wire id
    const out = held.drain();
    expect(out.map((m) => [m.peerId, m.requestId, m.timings.length])).toEqual([
      ['a', 1, RELAY_CHUNK],
      ['a', 1, 3],
      ['b', 1, 1],
      ['a', 2, 1],
    ]);
    expect(out.filter((m) => m.peerId === 'a' && m.requestId === 1).flatMap((m) => m.timings)).toEqual(many);
    expect(out[0].clockUncertaintyMs).toBe(2); // the latest bound
    expect(held.drain()).toEqual([]);
  });
});

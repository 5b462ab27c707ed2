import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/manual-clock.ts';
import type { TokenReport } from './stage-runner.ts';
import { TokenReportBatcher } from './token-report-batcher.ts';

/** A batcher on a hand-driven clock; `sent` lists what went out, with the time it went. */
function batcher() {
  const clock = new ManualClock();
  const b = new TokenReportBatcher({ maxDelayMs: 100, setTimer: clock.setTimer, clearTimer: clock.clearTimer });
  const sent: { at: number; requestId: number; report: TokenReport }[] = [];
  let generated = 0;
  return {
    sent,
    /** the next token of `requestId` (text `<id>`), `done` ending it */
    token(requestId: number, id: number, done = false) {
      generated++;
      const report: TokenReport = { tokenIds: [id], text: `<${id}>`, generated, done };
      if (done) report.finishReason = 'max-tokens';
      b.push(requestId, report, (r) => sent.push({ at: clock.now(), requestId, report: r }));
    },
    flush: (requestId: number) => b.flush(requestId),
    advance: (ms: number) => clock.advance(ms),
    pendingTimers: () => clock.pendingTimers,
  };
}

describe('TokenReportBatcher', () => {
  it('sends the first token at once, batches the next ones for at most maxDelayMs, and the last at once', () => {
    const b = batcher();
    b.token(7, 10);
    expect(b.sent).toHaveLength(1); // time to first token is not delayed
    b.advance(30);
    b.token(7, 11);
    b.advance(30);
    b.token(7, 12);
    expect(b.sent).toHaveLength(1);
    b.advance(70); // 100 ms after token 11
    expect(b.sent).toHaveLength(2);
    expect(b.sent[1]).toEqual({
      at: 130,
      requestId: 7,
      report: { tokenIds: [11, 12], text: '<11><12>', generated: 3, done: false },
    });
    b.advance(10);
    b.token(7, 13);
    b.token(7, 14, true); // done: what is held goes with it, now
    expect(b.sent).toHaveLength(3);
    expect(b.sent[2]).toEqual({
      at: 140,
      requestId: 7,
      report: { tokenIds: [13, 14], text: '<13><14>', generated: 5, done: true, finishReason: 'max-tokens' },
    });
    expect(b.pendingTimers()).toBe(0);
  });

  it('loses and reorders nothing: every token arrives once, in order, per request', () => {
    const b = batcher();
    const ids: Record<number, number[]> = { 1: [], 2: [] };
    for (let i = 0; i < 50; i++) {
      const req = i % 3 === 0 ? 2 : 1;
      ids[req].push(i);
      b.token(req, i, i === 49);
      b.advance(i % 7 === 0 ? 120 : 9);
    }
    b.flush(1);
    for (const req of [1, 2]) {
      const got = b.sent.filter((s) => s.requestId === req).flatMap((s) => s.report.tokenIds);
      expect(got).toEqual(ids[req]);
    }
    expect(b.sent.length).toBeLessThan(50); // batched
  });

  it('flush sends a held batch at once (the run ended or failed), and a new request starts unbatched', () => {
    const b = batcher();
    b.token(3, 1);
    b.token(3, 2);
    b.flush(3);
    expect(b.sent.map((s) => s.report.tokenIds)).toEqual([[1], [2]]);
    expect(b.pendingTimers()).toBe(0);
    b.flush(3); // nothing held: nothing sent
    expect(b.sent).toHaveLength(2);
    b.token(4, 9);
    expect(b.sent.at(-1)!.report.tokenIds).toEqual([9]);
  });
});

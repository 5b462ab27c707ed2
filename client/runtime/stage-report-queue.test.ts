import { describe, expect, it } from 'vitest';
import type { PhaseEvent, TokenEvent } from '../../shards/runtime/stage-peer.ts';
import { ManualClock } from '../../core/manual-clock.ts';
import { StageReportQueue, type StageReports } from './stage-report-queue.ts';

/** A queue on a hand-driven clock; `sent` lists the batches with the time they went. */
function queue() {
  const clock = new ManualClock();
  const sent: { at: number; batch: StageReports }[] = [];
  const q = new StageReportQueue({
    send: (batch) => sent.push({ at: clock.now(), batch }),
    tokenDelayMs: 100,
    phaseDelayMs: 1000,
    timers: clock,
  });
  const phase = (step: number, phase: PhaseEvent['phase'] = 'kernel'): PhaseEvent => ({
    requestId: 1,
    phase,
    step,
    startMs: step,
    endMs: step + 1,
  });
  const token = (index: number, done = false): TokenEvent => ({
    requestId: 1,
    index,
    tokenId: 100 + index,
    text: '',
    done,
  });
  return { q, sent, clock, phase, token };
}

const settle = () => new Promise<void>((r) => queueMicrotask(r));

describe('StageReportQueue', () => {
  it("sends step 0's phases and the first token at the end of the task, with what came in the same task", async () => {
    const { q, sent, phase, token } = queue();
    q.phase(phase(0, 'ingress'));
    q.phase(phase(0, 'kernel'));
    q.token(token(0));
    expect(sent).toEqual([]);
    await settle();
    expect(sent).toHaveLength(1);
    expect(sent[0].batch.phases.map((p) => p.phase)).toEqual(['ingress', 'kernel']);
    expect(sent[0].batch.tokens.map((t) => t.index)).toEqual([0]);
  });

  it('holds decode tokens for at most tokenDelayMs and sends them as one batch with the phases held, in order', async () => {
    const { q, sent, clock, phase, token } = queue();
    for (let step = 1; step <= 3; step++) {
      q.phase(phase(step));
      q.token(token(step));
      clock.advance(30);
      await settle();
    }
    expect(sent).toEqual([]);
    clock.advance(10); // 100 ms after step 1's report
    expect(sent).toHaveLength(1);
    expect(sent[0].at).toBe(100);
    expect(sent[0].batch.phases.map((p) => p.step)).toEqual([1, 2, 3]);
    expect(sent[0].batch.tokens.map((t) => t.index)).toEqual([1, 2, 3]);
  });

  it("holds a decode step's phases for at most phaseDelayMs when no token takes them along", async () => {
    const { q, sent, clock, phase, token } = queue();
    q.phase(phase(1, 'ingress'));
    clock.advance(400);
    q.phase(phase(2, 'ingress'));
    clock.advance(599);
    await settle();
    expect(sent).toEqual([]); // a middle stage's page stays asleep through ten steps
    clock.advance(1); // 1000 ms after step 1's phase
    expect(sent.map((s) => s.at)).toEqual([1000]);
    expect(sent[0].batch.phases.map((p) => p.step)).toEqual([1, 2]);
    q.phase(phase(3, 'ingress'));
    clock.advance(500);
    q.token(token(3)); // the text cannot wait that long: the phase goes with it
    clock.advance(100);
    expect(sent.map((s) => s.at)).toEqual([1000, 1600]);
    expect(sent[1].batch.phases.map((p) => p.step)).toEqual([3]);
    expect(sent[1].batch.tokens.map((t) => t.index)).toEqual([3]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('the last token goes at once and takes the held ones with it; flush() sends the rest, nothing twice', async () => {
    const { q, sent, clock, phase, token } = queue();
    q.phase(phase(4));
    q.token(token(4));
    q.token(token(5, true));
    await settle();
    expect(sent).toHaveLength(1);
    expect(sent[0].batch.tokens.map((t) => t.index)).toEqual([4, 5]);
    expect(clock.pendingTimers).toBe(0);
    q.phase(phase(5, 'egress'));
    q.flush();
    q.flush();
    expect(sent).toHaveLength(2);
    expect(sent[1].batch.phases.map((p) => p.phase)).toEqual(['egress']);
    clock.advance(1000);
    expect(sent).toHaveLength(2);
  });
});

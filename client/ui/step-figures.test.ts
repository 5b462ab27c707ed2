import { describe, expect, it } from 'vitest';
import type { PredictedStage, TimingEntry } from '../../core/protocol.ts';
import { perTokenLine, stepFigures, type StepFigures } from './step-figures.ts';

const stage = (stageIndex: number, peerId: string): PredictedStage => ({
  stageIndex,
  peerId,
  displayName: `page ${peerId}`,
  layers: { start: stageIndex * 2, end: stageIndex * 2 + 2 },
  embeds: stageIndex === 0,
  hasHead: stageIndex === 1,
  load: 1,
  wait: 0,
  comm: 0,
  compute: 1,
  startTime: 1,
  finishTime: 2,
});

/** ingress, kernel, egress of `step` starting at `at`, lasting i, k, e ms. */
const step = (s: number, at: number, i: number, k: number, e: number): TimingEntry[] => [
  { phase: 'ingress', step: s, startMs: at, endMs: at + i },
  { phase: 'kernel', step: s, startMs: at + i, endMs: at + i + k },
  { phase: 'egress', step: s, startMs: at + i + k, endMs: at + i + k + e },
];

describe('stepFigures', () => {
  it("per stage the decode steps' medians, per token the first stage's cycle and what lies between stages", () => {
    // listed out of ring order: the figures follow stageIndex
    const stages = [stage(1, 'b'), stage(0, 'a')];
    const measured = new Map<string, TimingEntry[]>([
      ['a', [...step(0, 0, 5, 50, 5), ...step(1, 100, 1, 4, 1), ...step(2, 120, 1, 6, 1), ...step(3, 140, 1, 4, 1)]],
      ['b', [...step(1, 30, 2, 8, 2), ...step(2, 52, 2, 8, 4)]], // its own clock
    ]);
    const f = stepFigures(stages, measured)!;
    expect(f.rows).toEqual([
      { label: 'page a', ingressMs: 1, kernelMs: 4, egressMs: 1 },
      { label: 'page b', ingressMs: 2, kernelMs: 8, egressMs: 3 },
    ]);
    expect(f.perTokenMs).toBe(20); // 100 -> 120 -> 140 on page a
    expect(f.computeMs).toBe(12);
    expect(f.overheadMs).toBe(7);
    expect(f.betweenMs).toBe(1); // 20 - (a's median step 6 + b's 13)
    expect(f.hops).toBeNull(); // the pages' clocks are not known to agree
  });

  it("reads each hop across its two pages where both timed the request on the server's clock", () => {
    const stages = [stage(0, 'a'), stage(1, 'b')];
    // a hands over at 100 n + 7; b has it at 100 n + 10 and hands back at 100 n + 17; a's next input at 100 (n + 1)
    const ring = (readyAt: number) => [1, 2, 3].flatMap((n) => step(n, 100 * n + readyAt, 1, 5, 1));
    const measured = new Map<string, TimingEntry[]>([
      ['a', ring(0)],
      ['b', ring(10)],
    ]);
    const f = stepFigures(
      stages,
      measured,
      new Map([
        ['a', 0.4],
        ['b', 1.5],
      ]),
    )!;
    expect(f.hops).toEqual({ labels: ['page a → page b', 'page b → page a'], ms: [3, 83], clockBoundMs: 1.5 });
    // one page on its own clock: no hop is read across pages
    expect(
      stepFigures(
        stages,
        measured,
        new Map([
          ['a', 0.4],
          ['b', null],
        ]),
      )!.hops,
    ).toBeNull();
  });

  it('is null until the first stage has two decode inputs and every stage a decode step', () => {
    const stages = [stage(0, 'a'), stage(1, 'b')];
    expect(stepFigures(stages, new Map([['a', step(1, 0, 1, 1, 1)]]))).toBeNull();
    expect(stepFigures(stages, new Map([['a', [...step(1, 0, 1, 1, 1), ...step(2, 9, 1, 1, 1)]]]))).toBeNull();
  });
});

describe('perTokenLine', () => {
  const figures = (rows: number, betweenMs: number): StepFigures => ({
    rows: Array.from({ length: rows }, (_, i) => ({ label: `s${i}`, ingressMs: 0.1, kernelMs: 5, egressMs: 0.2 })),
    perTokenMs: 27.5,
    computeMs: 5 * rows,
    overheadMs: 0.3 * rows,
    betweenMs,
    hops: null,
  });

  it('names the rest between stages for a pipeline and between steps for one page', () => {
    expect(perTokenLine(figures(2, 3.25))).toBe(
      'Per token 27.5 ms = compute 10.0 + overhead in the stages 0.6 + between stages 3.3 (medians of the decode steps, ms)',
    );
    expect(perTokenLine(figures(1, 2))).toContain('+ between steps 2.0 (');
  });

  it('never shows a negative rest: medians over different steps need not add up', () => {
    // seen on one page over 5 decode steps: cycle 27.5 ms against a median kernel of 33.5 ms
    expect(perTokenLine(figures(1, -6.1))).toContain('+ between steps under 0.1 (');
    expect(perTokenLine(figures(3, 0))).toContain('+ between stages under 0.1 (');
  });
});

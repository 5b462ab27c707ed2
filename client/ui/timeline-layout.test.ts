import { describe, expect, it } from 'vitest';
import {
  formatSeconds,
  generationMetrics,
  layoutTimeline,
  niceStep,
  predictedIntervals,
  rectAt,
  warmStart,
  type LaneInput,
  type MeasuredPhaseInput,
} from './timeline-layout.ts';

/** Two stages of a CSGO plan, worked by hand: stage 0 loads 1 s, computes 0.5 s (finish 1.5);
 * stage 1 loads 1 s, waits 0.5 s for stage 0, receives 0.25 s, computes 1 s (finish 2.75). */
const STAGE0 = { stageIndex: 0, label: 'A', load: 1, wait: 0, comm: 0, compute: 0.5, startTime: 1, finishTime: 1.5 };
const STAGE1 = {
  stageIndex: 1,
  label: 'B',
  load: 1,
  wait: 0.5,
  comm: 0.25,
  compute: 1,
  startTime: 1.5,
  finishTime: 2.75,
};

describe('predictedIntervals', () => {
  it('follows the CSGO timing equations', () => {
    expect(predictedIntervals(STAGE0)).toEqual([
      { phase: 'load', start: 0, end: 1 },
      { phase: 'compute', start: 1, end: 1.5 },
    ]);
    expect(predictedIntervals(STAGE1)).toEqual([
      { phase: 'load', start: 0, end: 1 },
      { phase: 'wait', start: 1, end: 1.5 },
      { phase: 'receive', start: 1.5, end: 1.75 },
      { phase: 'compute', start: 1.75, end: 2.75 },
    ]);
  });
});

describe('niceStep and formatSeconds', () => {
  it('picks 1-2-5 steps', () => {
    expect(niceStep(2.75, 6)).toBe(0.5);
    expect(niceStep(10, 5)).toBe(2);
    expect(niceStep(0.03, 3)).toBeCloseTo(0.01, 12);
    expect(niceStep(7, 1)).toBe(10);
  });
  it('formats seconds', () => {
    expect(formatSeconds(0)).toBe('0');
    expect(formatSeconds(0.25)).toBe('250 ms');
    expect(formatSeconds(1.5)).toBe('1.5 s');
    expect(formatSeconds(12.345)).toBe('12.3 s');
  });
});

describe('layoutTimeline', () => {
  const measured1: MeasuredPhaseInput[] = [
    { phase: 'storage-read', step: 0, start: 0, end: 0.6 },
    { phase: 'session-create', step: 0, start: 0.6, end: 1.2 },
    { phase: 'compute', step: 0, start: 2, end: 3 },
    { phase: 'compute', step: 1, start: 3.2, end: 3.4 },
    { phase: 'compute', step: 9, start: 9, end: 10 }, // beyond decodeSteps: not drawn, not in span
  ];
  const lanes: LaneInput[] = [
    { stageIndex: 1, label: 'B', detail: 'layers 3-4', predicted: STAGE1, measured: measured1 },
    { stageIndex: 0, label: 'A', detail: 'layers 1-2', predicted: STAGE0, measured: [] },
  ];
  const layout = layoutTimeline(lanes, 3.1, { width: 1000, decodeSteps: 2, labelWidth: 200, rowHeight: 20 });
  const pxPerSecond = (layout.plotRight - layout.plotLeft) / layout.span;

  it('orders lanes by stage and stacks prediction above measurement', () => {
    expect(layout.lanes.map((l) => l.label)).toEqual(['A', 'B']);
    for (const l of layout.lanes) expect(l.measuredY).toBe(l.predictedY + 20);
    expect(layout.lanes[1].y).toBeGreaterThan(layout.lanes[0].y + 40);
  });

  it('spans the latest shown time rounded up to a tick', () => {
    expect(layout.span).toBeGreaterThanOrEqual(3.4);
    expect(layout.span).toBeLessThan(4.01);
    expect(layout.ticks[0].x).toBe(layout.plotLeft);
    expect(layout.ticks.at(-1)!.x).toBeCloseTo(layout.plotRight, 9);
  });

  it('places rectangles proportionally to time', () => {
    const compute = layout.rects.find(
      (r) => r.lane === 1 && r.row === 'measured' && r.phase === 'compute' && r.step === 0,
    )!;
    expect(compute.x).toBeCloseTo(layout.plotLeft + 2 * pxPerSecond, 9);
    expect(compute.width).toBeCloseTo(1 * pxPerSecond, 9);
    const wait = layout.rects.find((r) => r.lane === 1 && r.row === 'predicted' && r.phase === 'wait')!;
    expect(wait.x).toBeCloseTo(layout.plotLeft + 1 * pxPerSecond, 9);
    expect(wait.width).toBeCloseTo(0.5 * pxPerSecond, 9);
    expect(layout.rects.some((r) => r.step === 9)).toBe(false);
    expect(layout.rects.filter((r) => r.lane === 1 && r.row === 'measured')).toHaveLength(4);
  });

  it('marks predicted latency and measured TTFT', () => {
    const t = layout.markers.find((m) => m.kind === 'predicted-latency')!;
    expect(t.seconds).toBe(2.75);
    expect(t.x).toBeCloseTo(layout.plotLeft + 2.75 * pxPerSecond, 9);
    expect(layout.markers.find((m) => m.kind === 'measured-ttft')!.seconds).toBe(3.1);
  });

  it('puts marker labels that would collide on separate rows, apart ones on one row', () => {
    const lane: LaneInput = {
      stageIndex: 0,
      label: 'a',
      detail: '',
      predicted: { ...STAGE0, finishTime: 10, startTime: 9.5, load: 9.5, compute: 0.5 },
      measured: [],
    };
    const close = layoutTimeline([lane], 9.8, { width: 800, markerFont: 14 });
    const [p1, m1] = [
      close.markers.find((m) => m.kind === 'predicted-latency')!,
      close.markers.find((m) => m.kind === 'measured-ttft')!,
    ];
    expect(p1.labelY).not.toBe(m1.labelY);
    expect(close.height).toBeGreaterThanOrEqual(Math.max(p1.labelY, m1.labelY));
    const apart = layoutTimeline([lane], 2, { width: 800, markerFont: 14 });
    const [p2, m2] = [
      apart.markers.find((m) => m.kind === 'predicted-latency')!,
      apart.markers.find((m) => m.kind === 'measured-ttft')!,
    ];
    expect(p2.labelY).toBe(m2.labelY);
    expect(apart.height).toBeLessThan(close.height);
  });

  it('finds the phase under a point (the hover title of the chart), none between rows or lanes', () => {
    const px = (t: number) => layout.plotLeft + t * pxPerSecond;
    const laneB = layout.lanes[1];
    // 2.5 s on B's measured row: its prefill compute (2-3 s)
    const hit = rectAt(layout, px(2.5), laneB.measuredY + 10);
    expect(hit).toMatchObject({ lane: 1, row: 'measured', phase: 'compute', step: 0 });
    // 1.25 s on B's predicted row: the predicted wait (1-1.5 s)
    expect(rectAt(layout, px(1.25), laneB.predictedY + 10)).toMatchObject({ row: 'predicted', phase: 'wait' });
    // 1.5 s on B's measured row: between session create (ends 1.2) and compute (starts 2)
    expect(rectAt(layout, px(1.5), laneB.measuredY + 10)).toBeNull();
    // the 2 px margin above a row's rectangle and the label column hold none
    expect(rectAt(layout, px(2.5), laneB.measuredY + 1)).toBeNull();
    expect(rectAt(layout, 10, laneB.measuredY + 10)).toBeNull();
    // brute force: every rectangle's centre finds a rectangle that holds it
    for (const r of layout.rects) {
      const found = rectAt(layout, r.x + r.width / 2, r.y + r.height / 2)!;
      expect(found.x <= r.x + r.width / 2 && r.x + r.width / 2 <= found.x + found.width).toBe(true);
      expect(found.y).toBe(r.y);
    }
  });

  it('keeps a zero-length phase visible and survives an empty input', () => {
    const l = layoutTimeline(
      [
        {
          stageIndex: 0,
          label: 'x',
          detail: '',
          predicted: null,
          measured: [{ phase: 'send', step: 0, start: 0.5, end: 0.5 }],
        },
      ],
      null,
      { width: 400 },
    );
    expect(l.rects[0].width).toBeGreaterThan(1);
    const empty = layoutTimeline([], null, { width: 400 });
    expect(empty.rects).toEqual([]);
    expect(empty.span).toBeGreaterThan(0);
  });
});

describe('warmStart', () => {
  const at = (phase: MeasuredPhaseInput['phase'], step: number, start: number): MeasuredPhaseInput => ({
    phase,
    step,
    start,
    end: start + 1,
  });
  it('is a prefill computed without a storage read or a session creation', () => {
    expect(warmStart([at('wait', 0, 0), at('compute', 0, 1), at('compute', 1, 2)])).toBe(true);
    expect(warmStart([at('session-create', 0, 0), at('compute', 0, 1)])).toBe(false); // cold, or waited for a load
    expect(warmStart([at('storage-read', 0, 0), at('session-create', 0, 1), at('compute', 0, 2)])).toBe(false);
    expect(warmStart([at('wait', 0, 0)])).toBe(false); // not computed yet: unknown
  });
});

describe('generationMetrics', () => {
  it('computes TTFT and decode rate from sample phases', () => {
    const samples: MeasuredPhaseInput[] = [
      { phase: 'sample', step: 0, start: 1.9, end: 2 },
      { phase: 'compute', step: 0, start: 1, end: 1.9 },
      { phase: 'sample', step: 2, start: 2.9, end: 3 },
      { phase: 'sample', step: 1, start: 2.4, end: 2.5 },
      { phase: 'sample', step: 4, start: 3.9, end: 4 },
      { phase: 'sample', step: 3, start: 3.4, end: 3.5 },
    ];
    // 4 decode tokens in 2 s after the first token
    expect(generationMetrics(samples)).toEqual({ ttft: 2, tokens: 5, decodeTokensPerSec: 2 });
  });
  it('is empty before the first token', () => {
    expect(generationMetrics([])).toEqual({ ttft: null, tokens: 0, decodeTokensPerSec: null });
    expect(generationMetrics([{ phase: 'sample', step: 0, start: 0, end: 1 }])).toEqual({
      ttft: 1,
      tokens: 1,
      decodeTokensPerSec: null,
    });
  });
});

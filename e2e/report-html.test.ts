import { describe, expect, it } from 'vitest';
import { ganttSvg } from './report-html.ts';
import type { PlanRun } from './run-summary.ts';

/** A one-stage run with only what the chart reads: the prediction, the TTFT and the page's phases. */
function run(predictedT: number, ttft: number): PlanRun {
  return {
    predictedLatency: predictedT,
    metrics: { ttft },
    stages: [
      {
        stageIndex: 0,
        name: 'dev1',
        peerId: 'p1',
        layers: '1-16',
        embeds: true,
        hasHead: true,
        predicted: {
          load: Math.min(2, predictedT),
          wait: 0,
          comm: 0,
          compute: Math.max(0, predictedT - 2),
          start: Math.min(2, predictedT),
          finish: predictedT,
        },
      },
    ],
    timings: {
      p1: [
        { phase: 'storage-read', step: 0, startMs: 0, endMs: Math.min(2400, ttft * 500) },
        { phase: 'compute', step: 0, startMs: Math.min(2400, ttft * 500), endMs: ttft * 1000 },
        { phase: 'compute', step: 1, startMs: 4800, endMs: 5000 }, // a decode step: the chart runs to 5 s
      ],
    },
  } as unknown as PlanRun;
}

/** The chart's marker labels: text, anchor, x and y. */
function labels(svg: string): { text: string; anchor: string; x: number; y: number }[] {
  return [
    ...svg.matchAll(/<text x="([\d.]+)" y="([\d.]+)" text-anchor="(start|end)"[^>]*>((?:T pred|TTFT)[^<]*)<\/text>/g),
  ].map((m) => ({ x: Number(m[1]), y: Number(m[2]), anchor: m[3], text: m[4] }));
}

describe('report Gantt chart', () => {
  it("puts the prediction's label left of its line and the TTFT's right of its, so close lines do not overlap", () => {
    // the demo's dp run: T pred 3.44 s and TTFT 3.82 s, ~55 px apart (both labels once began at their lines)
    const [pred, ttft] = labels(ganttSvg(run(3.44, 3.82)));
    expect(pred.text).toBe('T pred 3.44 s');
    expect(pred.anchor).toBe('end');
    expect(ttft.text).toBe('TTFT 3.82 s');
    expect(ttft.anchor).toBe('start');
    expect(pred.x).toBeLessThan(ttft.x);
    expect(pred.y).toBe(ttft.y);
  });

  it('puts two labels that would still overlap on separate rows', () => {
    // a TTFT at the chart's right edge takes its label left of its line too, over the prediction's
    const [pred, ttft] = labels(ganttSvg(run(4.95, 5.0)));
    expect(ttft.anchor).toBe('end');
    expect(pred.anchor).toBe('end');
    expect(pred.y).not.toBe(ttft.y);
  });
});

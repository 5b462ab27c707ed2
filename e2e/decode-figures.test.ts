import { describe, expect, it } from 'vitest';
import { hopForFrame, longTaskFigures, shardLoadRatio, stageUnitIndices } from './decode-figures.ts';

describe('hopForFrame', () => {
  const sizes = [
    { bytes: 16384, oneWayMs: 2.5 },
    { bytes: 4096, oneWayMs: 1.25 },
    { bytes: 4, oneWayMs: 0.5 },
  ];

  it('takes the smallest measured frame that holds the decode frame', () => {
    expect(hopForFrame(sizes, 4096)).toEqual({ bytes: 4096, oneWayMs: 1.25 });
    expect(hopForFrame(sizes, 4097)).toEqual({ bytes: 16384, oneWayMs: 2.5 });
    expect(hopForFrame(sizes, 1)).toEqual({ bytes: 4, oneWayMs: 0.5 });
  });

  it('falls back to the largest frame measured, and to null without any', () => {
    expect(hopForFrame(sizes, 1 << 20)).toEqual({ bytes: 16384, oneWayMs: 2.5 });
    expect(hopForFrame([], 4096)).toBeNull();
  });
});

describe('stageUnitIndices', () => {
  // embed, layers 0..3, head: a 4-layer package
  const units = [
    { kind: 'embed', bytes: 100 },
    { kind: 'layer', layer: 0, bytes: 10 },
    { kind: 'layer', layer: 1, bytes: 10 },
    { kind: 'layer', layer: 2, bytes: 10 },
    { kind: 'layer', layer: 3, bytes: 10 },
    { kind: 'head', bytes: 100 },
  ];

  it("picks a stage's layers [start, end) and its embedding or head", () => {
    expect(stageUnitIndices(units, { range: { start: 0, end: 2 }, embeds: true, hasHead: false })).toEqual([0, 1, 2]);
    expect(stageUnitIndices(units, { range: { start: 2, end: 4 }, embeds: false, hasHead: true })).toEqual([3, 4, 5]);
    expect(stageUnitIndices(units, { range: { start: 1, end: 3 }, embeds: false, hasHead: false })).toEqual([2, 3]);
    expect(stageUnitIndices(units, { range: { start: 0, end: 4 }, embeds: true, hasHead: true })).toEqual([
      0, 1, 2, 3, 4, 5,
    ]);
  });
});

describe('shardLoadRatio', () => {
  const MiB = 1 << 20;

  it('is the median of load / raw read per stage of at least minBytes', () => {
    // ratios 20/100 = 0.2, 30/60 = 0.5, 40/50 = 0.8 (sizes >= 8 MiB); the 1 MiB stage (1.0) is left out
    const rows = [
      { unitBytes: 10 * MiB, loadMBps: 20, rawReadMBps: 100 },
      { unitBytes: 9 * MiB, loadMBps: 30, rawReadMBps: 60 },
      { unitBytes: 8 * MiB, loadMBps: 40, rawReadMBps: 50 },
      { unitBytes: 1 * MiB, loadMBps: 10, rawReadMBps: 10 },
    ];
    expect(shardLoadRatio(rows, 8 * MiB)).toBeCloseTo(0.5, 12);
    // two stages: the mean of the middle two, (0.2 + 0.5) / 2
    expect(shardLoadRatio(rows.slice(0, 2), 8 * MiB)).toBeCloseTo(0.35, 12);
  });

  it('leaves out stages without a raw read, and is null without any stage', () => {
    const rows = [
      { unitBytes: 10 * MiB, loadMBps: 20, rawReadMBps: null },
      { unitBytes: 10 * MiB, loadMBps: 30, rawReadMBps: 120 },
    ];
    expect(shardLoadRatio(rows, 8 * MiB)).toBeCloseTo(0.25, 12);
    expect(shardLoadRatio(rows.slice(0, 1), 8 * MiB)).toBeNull();
    expect(shardLoadRatio([], 0)).toBeNull();
  });
});

describe('longTaskFigures', () => {
  it('counts the tasks and gives the longest, null when none', () => {
    expect(
      longTaskFigures([
        { startMs: 0, durationMs: 51 },
        { startMs: 100, durationMs: 230 },
        { startMs: 400, durationMs: 64 },
      ]),
    ).toEqual({
      count: 3,
      maxMs: 230,
    });
    expect(longTaskFigures([])).toEqual({ count: 0, maxMs: null });
  });

  it('names what the longest task ran, where the page attributed it', () => {
    const tasks = [
      { startMs: 10, durationMs: 90, scripts: [{ what: 'TimerHandler:setTimeout tick @index.js', durationMs: 70 }] },
      {
        startMs: 500,
        durationMs: 120,
        scripts: [
          { what: 'Worker.onmessage onReply @worker-stage.js', durationMs: 80 },
          { what: 'FrameRequestCallback render @index.js', durationMs: 15 },
        ],
        renderMs: 20,
      },
    ];
    expect(longTaskFigures(tasks)).toEqual({
      count: 2,
      maxMs: 120,
      longestWhat:
        'Worker.onmessage onReply @worker-stage.js 80 ms; FrameRequestCallback render @index.js 15 ms; render 20 ms',
    });
    expect(longTaskFigures([{ startMs: 0, durationMs: 60 }])).toEqual({ count: 1, maxMs: 60 });
  });
});

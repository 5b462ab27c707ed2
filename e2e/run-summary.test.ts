import { describe, expect, it } from 'vitest';
import type { TimingEntry } from '../core/protocol.ts';
import { compareStages, layerLabel, measuredPrefill, requestMetrics } from './run-summary.ts';

const t = (phase: TimingEntry['phase'], step: number, startMs: number, endMs: number): TimingEntry => ({
  phase,
  step,
  startMs,
  endMs,
});

describe('run summary (predicted vs measured)', () => {
  it('labels 0-based half-open ranges 1-based inclusive', () => {
    expect(layerLabel({ start: 0, end: 3 })).toBe('1-3');
    expect(layerLabel({ start: 3, end: 4 })).toBe('4');
  });

  it('sums prefill phases, takes load and finish as the latest ends, ignores decode steps', () => {
    const m = measuredPrefill([
      t('storage-read', 0, 0, 120),
      t('session-create', 0, 120, 300),
      t('wait', 0, 300, 450),
      t('receive', 0, 450, 460),
      t('compute', 0, 460, 500),
      t('send', 0, 500, 505),
      t('compute', 1, 600, 700),
    ])!;
    expect(m.storageRead).toBeCloseTo(0.12, 12);
    expect(m.sessionCreate).toBeCloseTo(0.18, 12);
    expect(m.load).toBeCloseTo(0.3, 12);
    expect(m.wait).toBeCloseTo(0.15, 12);
    expect(m.receive).toBeCloseTo(0.01, 12);
    expect(m.compute).toBeCloseTo(0.04, 12);
    expect(m.finish).toBeCloseTo(0.505, 12);
    expect(measuredPrefill([t('compute', 2, 0, 1)])).toBeNull();
  });

  it('pairs every planned stage with its page report, in stage order; a silent page gets null', () => {
    const stage = (stageIndex: number, peerId: string, start: number, end: number) => ({
      stageIndex,
      peerId,
      displayName: peerId,
      layers: { start, end },
      embeds: stageIndex === 0,
      hasHead: stageIndex === 1,
      load: 0.1,
      wait: 0,
      comm: 0.01,
      compute: 0.2,
      startTime: 0.1,
      finishTime: 0.31,
    });
    const rows = compareStages(
      { stages: [stage(1, 'bbbb', 2, 4), stage(0, 'aaaa', 0, 2)] },
      new Map([['aaaa', [t('compute', 0, 10, 30)]]]),
    );
    expect(rows.map((r) => [r.stageIndex, r.layers, r.layerCount])).toEqual([
      [0, '1-2', 2],
      [1, '3-4', 2],
    ]);
    expect(rows[0].measured!.compute).toBeCloseTo(0.02, 12);
    expect(rows[1].measured).toBeNull();
  });

  it('TTFT is the first sample end; decode rate counts steps after it', () => {
    const m = requestMetrics([
      t('sample', 0, 900, 1000),
      t('sample', 1, 1090, 1100),
      t('sample', 2, 1190, 1200),
      t('sample', 3, 1290, 1300),
    ]);
    expect(m.ttft).toBeCloseTo(1.0, 12);
    expect(m.decodeTokensPerSec).toBeCloseTo(3 / 0.3, 9);
    expect(m.tokensSampled).toBe(4);
  });
});

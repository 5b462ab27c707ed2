import { describe, expect, it } from 'vitest';
import { calibrationRows, medianError, whatIfRows } from './calibration-rows.ts';

describe('calibration and what-if rows', () => {
  it('gives per phase the error before and after the refit, and their median', () => {
    const rows = calibrationRows({
      type: 'calibration',
      requestId: 3,
      planId: 'X-1',
      stages: [
        {
          peerId: 'pa000',
          displayName: 'phone',
          params: null,
          phases: [
            { phase: 'storage-read', predicted: 2, measured: 4, calibrated: 4.4 },
            { phase: 'compute', predicted: 1, measured: 0.5, calibrated: 0.5 },
            { phase: 'comm', predicted: null, measured: 0, calibrated: 0 },
          ],
        },
      ],
    });
    expect(rows.map((r) => [r.stage, r.phase, r.errorBefore, r.errorAfter])).toEqual([
      ['1. phone', 'storage-read', 0.5, expect.closeTo(0.1, 12)],
      ['1. phone', 'compute', 1, 0],
      ['1. phone', 'comm', null, null],
    ]);
    expect(medianError(rows.map((r) => r.errorBefore))).toBe(0.75);
    expect(medianError([null])).toBeNull();
  });

  it('marks the current method and the fastest prediction; a method without a plan is never the fastest', () => {
    const rows = whatIfRows(
      [
        { method: 'dp', predictedLatency: 3, tokensPerSec: 5, stageCount: 2 },
        { method: 'even', predictedLatency: 4, tokensPerSec: 4, stageCount: 3 },
        { method: 'single', predictedLatency: null, tokensPerSec: null, stageCount: 0, reason: 'memory' },
      ],
      'even',
    );
    expect(rows.map((r) => [r.method, r.current, r.fastest])).toEqual([
      ['dp', false, true],
      ['even', true, false],
      ['single', false, false],
    ]);
  });
});

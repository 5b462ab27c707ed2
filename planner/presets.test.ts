import { describe, expect, it } from 'vitest';
import { presetScenario } from './presets.ts';
import { allocationString, buildReport } from './report.ts';

const TOKENS = [256, 512, 1024, 2048, 4096, 8192];

describe('csgo-paper preset reproduces the paper', () => {
  const report = buildReport(presetScenario('csgo-paper'), TOKENS);
  const names = report.deviceNames;

  it('DP plans D3:7 -> D4:5 -> D2:11 -> D1:17 at 256 tokens and D3:3 -> D2:9 -> D1:28 at 8192', () => {
    const at = (t: number) => report.perTokens.find((r) => r.tokens === t)!.results.dp;
    expect(allocationString(at(256).timeline.stages, names)).toBe('D3:7 -> D4:5 -> D2:11 -> D1:17');
    expect(allocationString(at(8192).timeline.stages, names)).toBe('D3:3 -> D2:9 -> D1:28');
    expect(at(256).solver).toBe('exact');
  });

  it('DP is 8-50% below every baseline at every length, 17.4% below the best one on average', () => {
    for (const r of report.perTokens) {
      for (const b of ['ideal', 'even', 'heuristic'] as const) {
        expect(r.reduction[b]).toBeGreaterThan(7.9);
        expect(r.reduction[b]).toBeLessThan(50.2);
      }
    }
    expect(report.meanReduction.best).toBeCloseTo(17.43, 1);
  });

  it('every DP plan fits in memory (sum model) and the strongest device is last', () => {
    for (const r of report.perTokens) {
      expect(r.results.dp.timeline.memoryOk).toBe(true);
      expect(r.results.dp.timeline.stages.at(-1)!.device).toBe(0);
    }
  });
});

describe('csgo-table1 preset (Table 1 as printed)', () => {
  it('gives DP latencies 1.6-3.5% below the calibrated preset, as csgo-model.md says', () => {
    const printed = buildReport(presetScenario('csgo-table1'), TOKENS);
    const calibrated = buildReport(presetScenario('csgo-paper'), TOKENS);
    printed.perTokens.forEach((r, k) => {
      const below = 100 * (1 - r.results.dp.timeline.latency / calibrated.perTokens[k].results.dp.timeline.latency);
      expect(below).toBeGreaterThan(1.5);
      expect(below).toBeLessThan(3.6);
    });
  });
});

/**
 * The replay of a saved lab run (calibration-replay.ts) on a synthetic one: pages whose true parameters
 * differ from their profiles (calibration-sim.ts), two warm-up requests 3x slower, a calibration request,
 * then four plans. The replay must learn in order and map every page to its profile: its predictions after
 * calibration land near the simulated TTFTs, where the profiles alone miss them.
 */
import { describe, expect, it } from 'vitest';
import { simulateRun, type TrueDevice } from '../planner/calibration-sim.ts';
import { evaluatePlan } from '../planner/timing.ts';
import { modelConfigFor, profileDevice } from '../signaling/planning.ts';
import { sampleProfile } from '../signaling/test-support.ts';
import { SMALL_MODEL_WIDTHS, testManifest } from '../shards/test-manifest.ts';
import { replayCalibration, type SavedBench, type SavedRun } from './calibration-replay.ts';

const L = 6;
const manifest = testManifest({
  name: 'replay-test',
  dtype: 'fp32',
  config: { num_hidden_layers: L, ...SMALL_MODEL_WIDTHS },
});
const TOKENS = 128;
const names = ['p1', 'p2', 'p3'];
const peerIds = ['pa0001', 'pa0002', 'pa0003'];
// the profiles measured the fixed part of session creation (the stages' sizes here are too alike to fit it)
const profiles = [1, 2, 3].map((seed) =>
  sampleProfile(seed, { readBytesPerSec: 30e6, peakFlops: 2e10, sessionCreateFixedSec: 0.1 }),
);
const truth: TrueDevice[] = profiles.map((p, i) => ({
  ...profileDevice({ peerId: peerIds[i], profile: p }),
  peakFlops: p.peakFlops * 4,
  readBytesPerSec: [10e6, 60e6, 90e6][i],
  sessionCreateBytesPerSec: 40e6,
  sessionCreateFixedSec: 0.1,
  warmupSec: 0.01,
  linkLatencySec: 0.003,
  decodeFlopsPerSec: 1e9,
}));
const problem = (devices: TrueDevice[]) => ({
  model: modelConfigFor(manifest),
  devices,
  tokens: TOKENS,
  embeddingAndHead: true,
});

/** A saved run of devices `order` with `counts` layers each; `slow` divides every device's compute. */
function saved(method: string, order: number[], counts: number[], seed: number, slow = 1): SavedRun & { T: number } {
  let start = 0;
  const stages = order.map((k, n) => {
    const s = { device: n, layers: { start, end: start + counts[n] } };
    start += counts[n];
    return { ...s, k };
  });
  const devices = order.map((k) => ({ ...truth[k], peakFlops: truth[k].peakFlops / slow }));
  const run = simulateRun({ ...problem(devices), devices }, stages, { seed, noise: 0.02, decodeSteps: 6 });
  return {
    method,
    ttft: run.ttft,
    perStage: stages.map((s, n) => ({
      peerId: peerIds[s.k],
      name: names[s.k],
      range: s.layers,
      embeds: n === 0,
      hasHead: n === stages.length - 1,
    })),
    timings: Object.fromEntries(stages.map((s, n) => [peerIds[s.k], run.timings[n]])),
    T: run.ttft,
  };
}

describe('calibration replay', () => {
  const bench: SavedBench = {
    calibrationRuns: [
      saved('warm-up 1', [0, 1, 2], [2, 2, 2], 1, 3),
      saved('warm-up 2', [0, 1, 2], [2, 2, 2], 2, 3),
      saved('calibration', [0, 1, 2], [2, 2, 2], 3),
    ],
    coldStart: [
      saved('dp', [2, 1, 0], [3, 2, 1], 4),
      saved('even', [0, 1, 2], [2, 2, 2], 5),
      saved('heuristic', [2, 0], [4, 2], 6),
      saved('single', [2], [6], 7),
    ],
    profiles: Object.fromEntries(names.map((n, i) => [n, profiles[i]])),
  };

  it('predicts each plan from the requests before it, near the simulated TTFT; the profiles miss it', () => {
    const plans = replayCalibration(manifest, bench, TOKENS);

    expect(plans.map((p) => p.method)).toEqual(['dp', 'even', 'heuristic', 'single']);
    for (const p of plans) {
      expect(p.ttftError!, `${p.method} after calibration`).toBeLessThan(0.1);
      expect(p.medianPhaseError!, `${p.method} phases`).toBeLessThan(0.15);
    }
    // the profiles alone (4x too slow compute, other read rates) are far off on some plan
    const before = bench.coldStart.map((r) => {
      const devices = r.perStage.map((s) =>
        profileDevice({ peerId: s.peerId, profile: profiles[names.indexOf(s.name)] }),
      );
      const T = evaluatePlan(
        { ...problem([]), devices },
        r.perStage.map((s, n) => ({ device: n, layers: s.range })),
      ).latency;
      return Math.abs(T - r.ttft!) / r.ttft!;
    });
    expect(Math.max(...before)).toBeGreaterThan(0.25);
  });

  it("predicts a plan before it learns from it: the prediction does not depend on the plan's own run", () => {
    const last = (run: SavedRun) =>
      replayCalibration(manifest, { ...bench, coldStart: [...bench.coldStart, run] }, TOKENS).at(-1)!;
    const normal = last(saved('last', [0, 1, 2], [2, 2, 2], 8));
    const slow = last(saved('last', [0, 1, 2], [2, 2, 2], 8, 3)); // computes 3x slower
    expect(slow.measuredTtft!).toBeGreaterThan(normal.measuredTtft! * 1.05);
    expect(slow.predictedTtft).toBe(normal.predictedTtft);
  });

  it('learns from every cold run where the file has them all (coldRuns), not only the reported ones', () => {
    const a = saved('even', [0, 1, 2], [2, 2, 2], 11);
    const repeat = saved('even', [2, 0, 1], [1, 3, 2], 12, 3); // a repeat the report left out: 3x slower
    const c = saved('dp', [1, 2, 0], [3, 2, 1], 13);
    const reported = { ...bench, coldStart: [a, c] };
    const all = replayCalibration(manifest, { ...reported, coldRuns: [a, repeat, c] }, TOKENS);
    const inOrder = replayCalibration(manifest, { ...bench, coldStart: [a, repeat, c] }, TOKENS);
    const reportedOnly = replayCalibration(manifest, reported, TOKENS);
    expect(all.map((p) => p.predictedTtft)).toEqual(inOrder.map((p) => p.predictedTtft));
    expect(all).toHaveLength(3);
    expect(all[2].predictedTtft).not.toBeCloseTo(reportedOnly[1].predictedTtft, 3);
  });

  it('names the page whose profile is missing', () => {
    expect(() => replayCalibration(manifest, { ...bench, profiles: { p1: profiles[0] } }, TOKENS)).toThrow(/'p2'/);
  });
});

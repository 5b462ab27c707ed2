/**
 * The demo's calibration report (pure): on a synthetic run of pages whose true parameters are known, a
 * plan that carries those parameters as its refit predicts the run (small errors "after"), the profiles
 * alone do not ("before"), and the rankings are compared method by method.
 */
import { describe, expect, it } from 'vitest';
import type { CalibratedParams, RosterPeer, ServerMessageOf } from '../core/protocol.ts';
import { simulateRun, type TrueDevice } from '../planner/calibration-sim.ts';
import { evaluatePlan } from '../planner/index.ts';
import { modelConfigFor, profileDevice } from '../signaling/planning.ts';
import { NO_STAGE_TIMES, sampleProfile } from '../signaling/test-support.ts';
import { SMALL_MODEL_WIDTHS, testManifest } from '../shards/test-manifest.ts';
import { calibrationReport } from './calibration-report.ts';

const L = 4;
const manifest = testManifest({
  name: 'report-test',
  dtype: 'fp32',
  config: { num_hidden_layers: L, ...SMALL_MODEL_WIDTHS },
  units: [],
});

describe('calibration report', () => {
  it('gives the errors before and after calibration per plan and phase, and compares the rankings', () => {
    const profiles = [1, 2].map((seed) => sampleProfile(seed, { readBytesPerSec: 30e6, peakFlops: 2e10 }));
    const roster: RosterPeer[] = profiles.map((p, i) => ({
      peerId: `peer${i}`,
      displayName: `p${i}`,
      emulated: null,
      joinedAtMs: 0,
      connected: true,
      profile: p,
      cachedUnits: [],
      assignment: null,
    }));
    const raw = roster.map((r) => profileDevice({ peerId: r.peerId, profile: r.profile! }));
    const truth: TrueDevice[] = raw.map((d, i) => ({
      ...d,
      peakFlops: d.peakFlops * 4,
      readBytesPerSec: (8 + 4 * i) * 1e6,
      sessionCreateBytesPerSec: 40e6,
      sessionCreateFixedSec: 0.1,
      warmupSec: 0.2,
      linkLatencySec: 0.003,
      decodeFlopsPerSec: 1e9,
    }));
    // What a perfect refit would hand the plan: the true parameters.
    const params: CalibratedParams[] = truth.map((t, i) => ({
      samples: 1,
      computeScale: t.peakFlops / raw[i].peakFlops,
      readBytesPerSec: t.readBytesPerSec,
      sessionCreateBytesPerSec: t.sessionCreateBytesPerSec,
      sessionCreateFixedSec: t.sessionCreateFixedSec,
      warmupSec: t.warmupSec,
      linkLatencySec: t.linkLatencySec,
      uplinkBitsPerSec: null,
      decodeFlopsPerSec: t.decodeFlopsPerSec,
    }));
    const problem = { model: modelConfigFor(manifest), devices: truth, tokens: 128, embeddingAndHead: true };
    const plans = [
      { method: 'even' as const, stages: [0, 1].map((k) => ({ device: k, layers: { start: 2 * k, end: 2 * k + 2 } })) },
      { method: 'single' as const, stages: [{ device: 1, layers: { start: 0, end: L } }] },
    ];
    const runs = plans.map(({ method, stages }, i) => {
      const run = simulateRun(problem, stages, { seed: i, noise: 0, decodeSteps: 2 });
      const plan: ServerMessageOf<'plan-ready'> = {
        type: 'plan-ready',
        planId: `X-${i}`,
        method,
        tokens: 128,
        memoryModel: 'max',
        predictedLatency: evaluatePlan({ ...problem }, stages).latency,
        stages: stages.map((s, n) => ({
          stageIndex: n,
          peerId: `peer${s.device}`,
          displayName: `p${s.device}`,
          layers: s.layers,
          embeds: n === 0,
          hasHead: n === stages.length - 1,
          ...NO_STAGE_TIMES,
        })),
        excludedPeerIds: [],
        calibrated: stages.map((s) => ({ peerId: `peer${s.device}`, params: params[s.device] })),
      };
      const timings = Object.fromEntries(stages.map((s, n) => [`peer${s.device}`, run.timings[n]]));
      return { plan, measuredTtft: run.ttft, timings };
    });
    const r = calibrationReport(manifest, roster, runs);
    for (const p of r.plans) {
      expect(p.errorAfter!).toBeLessThan(0.05);
      expect(p.errorBefore!).toBeGreaterThan(0.25);
      expect(p.medianPhaseErrorAfter!).toBeLessThan(0.05);
      expect(p.medianPhaseErrorBefore!).toBeGreaterThan(p.medianPhaseErrorAfter!);
      expect(p.calibratedPages).toBe(p.phases.length / 6);
    }
    const byMeasured = [...r.plans].sort((a, b) => a.measuredTtft! - b.measuredTtft!).map((p) => p.method);
    expect(r.measuredRanking).toEqual(byMeasured);
    expect(r.rankingHolds).toBe(
      r.predictedRanking.length === byMeasured.length && r.predictedRanking.every((m, i) => m === byMeasured[i]),
    );
    expect(r.dpFastest).toBeNull(); // no DP plan ran
  });
});

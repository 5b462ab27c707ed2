/**
 * Calibration through the coordinator: a request's timings (from a synthetic run of pages whose true
 * parameters differ from their profiles) refit the devices, the session is told per phase, the field log
 * records the fit without anything that names a session or a person, and the next plan uses the fit.
 */
import { describe, expect, it } from 'vitest';
import { simulateRun, type TrueDevice } from '../planner/calibration-sim.ts';
import type { ServerMessageOf } from '../core/protocol.ts';
import type { Coordinator, Effect } from './coordinator.ts';
import { modelConfigFor, planProblemFor, profileDevice } from './planning.ts';
import { evaluatePlan } from '../planner/index.ts';
import {
  GREEDY,
  hostedSession,
  NO_STAGE_TIMES,
  onlyMessage as one,
  planSession,
  sampleProfile,
  sentTo as sent,
  testCoordinator,
} from './test-support.ts';
import { SMALL_MODEL_WIDTHS, testManifest } from '../shards/test-manifest.ts';
import { CalibrationStore } from './calibration-store.ts';

const L = 6;
const manifest = testManifest({
  name: 'calibration-test',
  dtype: 'fp32',
  config: { num_hidden_layers: L, ...SMALL_MODEL_WIDTHS },
});

const plan = (c: Coordinator, code: string, hostSecret: string, method: 'dp' | 'even', now: number) =>
  planSession(c, { code, hostSecret }, { method, tokens: 128 }, now);

/** What differs between the two runs' pages: their true read speed and session-creation cost, and the noise seed. */
interface Truth {
  readBytesPerSec: (i: number) => number;
  sessionCreateFixedSec: (i: number) => number;
  seed: number;
}

/**
 * Three profiled pages in a hosted session, an even plan over them, and a synthetic run of that plan on
 * pages that really compute 4x faster than profiled and pay creation, warm-up and latency.
 */
async function evenPlanAndRun(t: Truth) {
  const c = testCoordinator(manifest);
  const profiles = [1, 2, 3].map((seed) => sampleProfile(seed, { readBytesPerSec: 30e6, peakFlops: 2e10 }));
  const created = hostedSession(c, profiles);
  const { peerIds } = created;
  const truth: TrueDevice[] = profiles.map((p, i) => ({
    ...profileDevice({ peerId: peerIds[i], profile: p }),
    peakFlops: p.peakFlops * 4,
    readBytesPerSec: t.readBytesPerSec(i),
    sessionCreateBytesPerSec: 40e6,
    sessionCreateFixedSec: t.sessionCreateFixedSec(i),
    warmupSec: 0.2,
    linkLatencySec: 0.003,
    decodeFlopsPerSec: 1e9,
  }));
  const first = await plan(c, created.code, created.hostSecret, 'even', 1);
  const index = new Map(peerIds.map((id, i) => [id, i]));
  const stages = first.ready.stages.map((s) => ({ device: index.get(s.peerId)!, layers: s.layers }));
  const problem = { model: modelConfigFor(manifest), devices: truth, tokens: 128, embeddingAndHead: true };
  const run = simulateRun(problem, stages, { seed: t.seed, noise: 0.01, decodeSteps: 6 });
  /** The connection id of a page (the host is connection 1, the pages follow in order). */
  const connOf = (peerId: string) => 2 + index.get(peerId)!;
  const go = {
    type: 'go' as const,
    code: created.code,
    hostSecret: created.hostSecret,
    prompt: 'hi',
    sampling: GREEDY,
  };
  const finished = (requestId: number) => ({
    type: 'report-tokens' as const,
    requestId,
    tokenIds: [1],
    text: 'x',
    generated: 7,
    done: true,
    finishReason: 'max-tokens' as const,
  });
  return { c, created, peerIds, first, run, connOf, go, finished };
}

describe('calibration in the coordinator', () => {
  it('refits the stages from a request, tells the session per phase, logs anonymously, and the next plan uses it', async () => {
    // The pages really compute 4x faster than profiled, read slower, pay creation, warm-up and latency.
    const { c, created, peerIds, first, run, connOf, go, finished } = await evenPlanAndRun({
      readBytesPerSec: (i) => (10 + 5 * i) * 1e6,
      sessionCreateFixedSec: (i) => 0.1 + 0.05 * i,
      seed: 3,
    });
    expect(first.ready.whatIf?.map((w) => w.method)).toEqual(['dp', 'even', 'heuristic', 'single']);
    const dpWhatIf = first.ready.whatIf![0].predictedLatency!;
    for (const w of first.ready.whatIf!)
      if (w.predictedLatency !== null) expect(dpWhatIf).toBeLessThanOrEqual(w.predictedLatency + 1e-9);
    expect(first.ready.calibrated ?? []).toEqual([]); // nothing measured yet

    const start = one(c.handle(1, { ...go, maxNewTokens: 7 }, 2), 1, 'start');
    const effects: Effect[] = [];
    first.ready.stages.forEach((s, n) => {
      effects.push(
        ...c.handle(
          connOf(s.peerId),
          {
            type: 'report-timings',
            requestId: start.requestId,
            timings: run.timings[n],
            // the first page's timings are on the server's clock, to within 2 ms
            ...(n === 0 ? { clockUncertaintyMs: 2 } : {}),
          },
          3,
        ),
      );
    });
    c.handle(connOf(first.ready.stages.at(-1)!.peerId), finished(start.requestId), 4);
    // the session sees every page's timings, with the clock they are on where the page said
    const forwarded = sent(effects, 1).filter((m): m is ServerMessageOf<'timings'> => m.type === 'timings');
    expect(forwarded.map((m) => [m.peerId, m.clockUncertaintyMs])).toEqual(
      first.ready.stages.map((s, n) => [s.peerId, n === 0 ? 2 : undefined]),
    );
    const calibrations = sent(effects, 1).filter((m): m is ServerMessageOf<'calibration'> => m.type === 'calibration');
    expect(calibrations.length).toBeGreaterThan(0);
    const last = calibrations.at(-1)!;
    expect(last.stages.map((s) => s.peerId)).toEqual(first.ready.stages.map((s) => s.peerId));
    for (const s of last.stages) {
      expect(s.params).not.toBeNull();
      const finish = s.phases.find((p) => p.phase === 'finish')!;
      // the refitted model reproduces the request it was fitted on far better than the profile did
      expect(Math.abs(finish.calibrated - finish.measured)).toBeLessThan(Math.abs(finish.predicted! - finish.measured));
    }
    const logged = effects.flatMap((e) =>
      e.kind === 'field-log' && 'calibration' in e.record && e.record.calibration ? [e.record] : [],
    );
    expect(logged).toHaveLength(3); // one line per stage page and request
    const text = JSON.stringify(logged);
    for (const secret of [created.code, created.hostSecret, ...peerIds, 'p0', 'device 1'])
      expect(text).not.toContain(secret);

    // The next plan of the same split uses the fit: it now predicts the run.
    const again = await plan(c, created.code, created.hostSecret, 'even', 10);
    expect(again.request.candidates.every((x) => x.calibration)).toBe(true);
    expect(again.ready.calibrated?.map((x) => x.peerId).sort()).toEqual([...peerIds].sort());
    // The first run's split, evaluated on the devices the new plan was made with, predicts the run.
    const calibratedProblem = planProblemFor(again.request);
    const sameSplit = first.ready.stages.map((s) => ({
      device: again.request.candidates.findIndex((x) => x.peerId === s.peerId),
      layers: s.layers,
    }));
    const relErr = (x: number) => Math.abs(x - run.ttft) / run.ttft;
    expect(relErr(first.ready.predictedLatency)).toBeGreaterThan(0.25);
    expect(relErr(evaluatePlan(calibratedProblem, sameSplit).latency)).toBeLessThan(0.05);
    // and the plan-ready's prediction is the calibrated model's
    const planned = again.ready.stages.map((s) => ({
      device: again.request.candidates.findIndex((x) => x.peerId === s.peerId),
      layers: s.layers,
    }));
    expect(again.ready.predictedLatency).toBeCloseTo(evaluatePlan(calibratedProblem, planned).latency, 9);
  });
});

describe('calibration and failover', () => {
  it('forgets what a request taught once one of its stages is lost, and learns nothing more from it', async () => {
    const { c, created, first, run, connOf, go, finished } = await evenPlanAndRun({
      readBytesPerSec: () => 10e6,
      sessionCreateFixedSec: () => 0.1,
      seed: 5,
    });
    const start = one(c.handle(1, { ...go, maxNewTokens: 7 }, 2), 1, 'start');
    // the prefill's timings come in: the stages are refitted
    const reported = first.ready.stages.flatMap((s, n) =>
      c.handle(connOf(s.peerId), { type: 'report-timings', requestId: start.requestId, timings: run.timings[n] }, 3),
    );
    expect(sent(reported, 1).some((m) => m.type === 'calibration')).toBe(true);
    c.handle(connOf(first.ready.stages.at(-1)!.peerId), finished(start.requestId), 3);
    const taught = await plan(c, created.code, created.hostSecret, 'even', 4);
    expect(taught.request.candidates.some((x) => x.calibration)).toBe(true);
    // a second request on that plan loses a stage after its prefill timings came: nothing of it stays
    const second = one(c.handle(1, { ...go, maxNewTokens: 7 }, 5), 1, 'start');
    for (const [n, s] of taught.ready.stages.entries())
      c.handle(connOf(s.peerId), { type: 'report-timings', requestId: second.requestId, timings: run.timings[n] }, 6);
    c.disconnect(connOf(taught.ready.stages[0].peerId), 7);
    const after = sent(
      c.handle(
        connOf(taught.ready.stages[1].peerId),
        { type: 'report-timings', requestId: second.requestId, timings: run.timings[1] },
        8,
      ),
      1,
    );
    expect(after.some((m) => m.type === 'calibration')).toBe(false);
    // the first request still counts (it ran whole); the interrupted one is gone from the store
    const store = (c as unknown as { calibration: CalibrationStore }).calibration;
    expect(store.dropRequest(created.code, second.requestId)).toBe(false);
    expect(store.dropRequest(created.code, start.requestId)).toBe(true);
  });
});

describe('calibration store', () => {
  it("counts a page's first two (warm-up) requests only until the page has a later one", () => {
    const store = new CalibrationStore(manifest);
    const profile = sampleProfile(1, { readBytesPerSec: 30e6, peakFlops: 2e10 });
    const device = profileDevice({ peerId: 'pa0001', profile });
    const truth: TrueDevice = {
      ...device,
      sessionCreateBytesPerSec: 40e6,
      sessionCreateFixedSec: 0.1,
      warmupSec: 0.2,
      linkLatencySec: 0,
      decodeFlopsPerSec: 1e9,
    };
    const stages = [{ device: 0, layers: { start: 0, end: L } }];
    const predicted = [
      {
        stageIndex: 0,
        peerId: 'pa0001',
        displayName: 'p',
        layers: { start: 0, end: L },
        embeds: true,
        hasHead: true,
        ...NO_STAGE_TIMES,
      },
    ];
    const problem = { model: modelConfigFor(manifest), devices: [truth], tokens: 64, embeddingAndHead: true };
    const report = (requestId: number, slowdown: number) => {
      const run = simulateRun({ ...problem, devices: [{ ...truth, peakFlops: truth.peakFlops / slowdown }] }, stages, {
        seed: requestId,
        noise: 0,
        decodeSteps: 2,
      });
      const request = { requestId, planId: `X-${requestId}`, tokens: 64, stages: predicted, ended: true };
      store.onTimings(
        'S',
        { ...request, timings: new Map([['pa0001', run.timings[0]]]) },
        new Map([['pa0001', profile]]),
        true,
      );
      return store.paramsFor('S', [{ peerId: 'pa0001', profile }])[0]!.computeScale;
    };
    const scale = truth.peakFlops / device.peakFlops; // 1: the profile's compute is right in steady state
    expect(report(1, 3)).toBeCloseTo(scale / 3, 6); // the cold first request alone: 3x slower
    expect(report(2, 2)).toBeCloseTo(scale / 2, 6); // then the second alone, still 2x slower
    expect(report(3, 1)).toBeCloseTo(scale, 6); // then only the settled requests count
    expect(report(4, 1)).toBeCloseTo(scale, 6);
  });
});

/**
 * Calibration through the coordinator: a request's timings (from a synthetic run of pages whose true
 * parameters differ from their profiles) refit the devices, the session is told per phase, the field log
 * records the fit without anything that names a session or a person, and the next plan uses the fit.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ModelManifest } from '../shards/manifest.ts';
import { simulateRun, type TrueDevice } from '../planner/calibration-sim.ts';
import type { ServerMessage, ServerMessageOf } from '../core/protocol.ts';
import { Coordinator, type Effect } from './coordinator.ts';
import { planInline } from './planner-pool.ts';
import { modelConfigFor, planProblemFor, profileDevice } from './planning.ts';
import { evaluatePlan } from '../planner/index.ts';
import { sampleProfile } from './test-support.ts';
import { CalibrationStore } from './calibration-store.ts';

const L = 6;
const manifest: ModelManifest = {
  format: 'tandem-model-package',
  version: 1,
  name: 'calibration-test',
  architecture: 'qwen3',
  dtype: 'fp32',
  config: {
    num_hidden_layers: L,
    hidden_size: 128,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    intermediate_size: 512,
    vocab_size: 2000,
    rms_norm_eps: 1e-6,
    rope_theta: 1e6,
  },
  generation: null,
  tokenizer: { files: [] },
  units: ['embed', ...Array.from({ length: L }, (_, i) => `layer.${i}`), 'head'].map((id) => ({
    id,
    kind: id === 'embed' ? 'embed' : id === 'head' ? 'head' : 'layer',
    ...(id.startsWith('layer.') ? { layer: Number(id.slice(6)) } : {}),
    file: `${id}.bin`,
    bytes: 1,
    sha256: '0'.repeat(64),
    tensors: [],
  })),
};

const sent = (effects: Effect[], to: number): ServerMessage[] =>
  effects.flatMap((e) => (e.kind === 'send' && e.to === to ? [e.message] : []));
function one<T extends ServerMessage['type']>(effects: Effect[], to: number, type: T): ServerMessageOf<T> {
  const found = sent(effects, to).filter((m) => m.type === type);
  expect(found).toHaveLength(1);
  return found[0] as ServerMessageOf<T>;
}

async function plan(c: Coordinator, code: string, hostSecret: string, method: 'dp' | 'even', now: number) {
  const effect = c
    .handle(1, { type: 'plan', code, hostSecret, method, tokens: 128 }, now)
    .find((e) => e.kind === 'plan');
  if (effect?.kind !== 'plan') throw new Error('no plan effect');
  return {
    request: effect.request,
    ready: one(c.planFinished(effect.token, await planInline(effect.request), now), 1, 'plan-ready'),
  };
}

describe('calibration in the coordinator', () => {
  it('refits the stages from a request, tells the session per phase, logs anonymously, and the next plan uses it', async () => {
    const c = new Coordinator({
      model: manifest,
      randomBytes: (n) => new Uint8Array(randomBytes(n)),
      limits: { rosterIntervalMs: 0 },
    });
    c.connect(1, 'host');
    const created = one(c.handle(1, { type: 'create-session' }, 0), 1, 'session-created');
    const profiles = [1, 2, 3].map((seed) => sampleProfile(seed, { readBytesPerSec: 30e6, peakFlops: 2e10 }));
    const peerIds = profiles.map((profile, i) => {
      c.connect(2 + i, `a${i}`);
      const joined = one(
        c.handle(2 + i, { type: 'join', code: created.code, displayName: `p${i}` }, 0),
        2 + i,
        'joined',
      );
      c.handle(2 + i, { type: 'profile', profile }, 0);
      return joined.peerId;
    });
    // The pages really compute 4x faster than profiled, read slower, pay creation, warm-up and latency.
    const truth: TrueDevice[] = profiles.map((p, i) => ({
      ...profileDevice({ peerId: peerIds[i], profile: p }),
      peakFlops: p.peakFlops * 4,
      readBytesPerSec: (10 + 5 * i) * 1e6,
      sessionCreateBytesPerSec: 40e6,
      sessionCreateFixedSec: 0.1 + 0.05 * i,
      warmupSec: 0.2,
      linkLatencySec: 0.003,
      decodeFlopsPerSec: 1e9,
    }));

    const first = await plan(c, created.code, created.hostSecret, 'even', 1);
    expect(first.ready.whatIf?.map((w) => w.method)).toEqual(['dp', 'even', 'heuristic', 'single']);
    const dpWhatIf = first.ready.whatIf![0].predictedLatency!;
    for (const w of first.ready.whatIf!)
      if (w.predictedLatency !== null) expect(dpWhatIf).toBeLessThanOrEqual(w.predictedLatency + 1e-9);
    expect(first.ready.calibrated ?? []).toEqual([]); // nothing measured yet

    const index = new Map(peerIds.map((id, i) => [id, i]));
    const stages = first.ready.stages.map((s) => ({ device: index.get(s.peerId)!, layers: s.layers }));
    const problem = { model: modelConfigFor(manifest), devices: truth, tokens: 128, embeddingAndHead: true };
    const run = simulateRun(problem, stages, { seed: 3, noise: 0.01, decodeSteps: 6 });

    const start = one(
      c.handle(
        1,
        {
          type: 'go',
          code: created.code,
          hostSecret: created.hostSecret,
          prompt: 'hi',
          maxNewTokens: 7,
          sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
        },
        2,
      ),
      1,
      'start',
    );
    const effects: Effect[] = [];
    first.ready.stages.forEach((s, n) => {
      const conn = 2 + index.get(s.peerId)!;
      effects.push(
        ...c.handle(conn, { type: 'report-timings', requestId: start.requestId, timings: run.timings[n] }, 3),
      );
    });
    const lastConn = 2 + index.get(first.ready.stages.at(-1)!.peerId)!;
    c.handle(
      lastConn,
      {
        type: 'report-tokens',
        requestId: start.requestId,
        tokenIds: [1],
        text: 'x',
        generated: 7,
        done: true,
        finishReason: 'max-tokens',
      },
      4,
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

describe('calibration store', () => {
  it("counts a page's first (warm-up) request only until the page has another", () => {
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
        load: 0,
        wait: 0,
        comm: 0,
        compute: 0,
        startTime: 0,
        finishTime: 0,
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
    expect(report(2, 1)).toBeCloseTo(scale, 6); // then only the second counts
    expect(report(3, 1)).toBeCloseTo(scale, 6);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluatePlan } from '../planner/index.ts';
import { embeddingCost, headCost, layerCost } from '../planner/cost-model.ts';
import { removeTestPackages, testPackage } from '../shards/stage-test-packages.ts';
import { bytesPerParamFor, planProblemFor, residentWeightScale, type PlanRequest } from './planning.ts';
import { profileReportSchema } from '../core/protocol.ts';
import { sampleProfile, writeSyntheticPackage } from './test-support.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'tandem-planning-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  removeTestPackages();
});

describe('planning: browser terms from page profiles', () => {
  it('passes fixed session creation, warm-up and link latency to the planner, and they cost what the model says', async () => {
    const manifest = await writeSyntheticPackage(dir, { layers: 4 });
    const terms = { sessionCreateFixedSec: 0.25, warmupSec: 1.5, linkLatencySec: 0.125 };
    expect(profileReportSchema.safeParse(sampleProfile(1, terms)).success).toBe(true);
    expect(profileReportSchema.safeParse(sampleProfile(1, { warmupSec: -1 })).success).toBe(false);
    const request = (withTerms: boolean): PlanRequest => ({
      manifest,
      tokens: 64,
      method: 'dp',
      memoryModel: 'max',
      candidates: [1, 2].map((seed) => ({
        peerId: `p${seed}`,
        displayName: `page ${seed}`,
        profile: sampleProfile(seed, withTerms ? terms : {}),
      })),
    });
    const bare = planProblemFor(request(false));
    const withTerms = planProblemFor(request(true));
    expect(bare.devices[0]).not.toHaveProperty('warmupSec');
    expect(withTerms.devices[0]).toMatchObject(terms);
    const plan = [
      { device: 0, layers: { start: 0, end: 2 } },
      { device: 1, layers: { start: 2, end: 4 } },
    ];
    const a = evaluatePlan(bare, plan),
      b = evaluatePlan(withTerms, plan);
    expect(b.stages[0].load - a.stages[0].load).toBeCloseTo(0.25 + 1.5, 12);
    expect(b.stages[1].comm - a.stages[1].comm).toBeCloseTo(2 * 0.125, 12);
  });
});

describe('planning: memory in what a session holds, not what the package stores', () => {
  it('counts fp16 weights at fp32 and q4 weights at fp32 on wasm (dequantised) but 4-bit on WebGPU', () => {
    expect(residentWeightScale('fp32', 'wasm')).toBe(1);
    expect(residentWeightScale('fp32', 'webgpu')).toBe(1);
    expect(residentWeightScale('fp16', 'wasm')).toBe(2);
    expect(residentWeightScale('fp16', 'webgpu')).toBe(2);
    expect(residentWeightScale('q4', 'webgpu')).toBe(1);
    expect(residentWeightScale('q4', 'wasm')).toBeCloseTo(4 / bytesPerParamFor('q4'), 12); // 6.4
  });

  it("a wasm page holds a q4 stage's layers dequantised but its float32 embedding and head as stored; WebGPU holds all as stored", async () => {
    const manifest = (await testPackage('qwen3', true, 'q4')).reader.manifest;
    const whole = [{ device: 0, layers: { start: 0, end: manifest.config.num_hidden_layers } }];
    const request = (backend: 'wasm' | 'webgpu', memoryBytes: number): PlanRequest => ({
      manifest,
      tokens: 64,
      method: 'dp',
      memoryModel: 'max',
      candidates: [{ peerId: 'p1', displayName: 'page 1', profile: sampleProfile(1, { backend, memoryBytes }) }],
    });
    // the parts of the whole-model stage as the converter stored them (its unit files), and the largest
    // activation: a layer's float32 hidden states over the 64 tokens
    const bytesOf = (kind: string) => manifest.units.filter((u) => u.kind === kind).reduce((n, u) => n + u.bytes, 0);
    const layers = bytesOf('layer');
    const extras = bytesOf('embed') + bytesOf('head');
    const act = 4 * 64 * manifest.config.hidden_size;
    const scale = residentWeightScale('q4', 'wasm');
    // what each page holds: 4-bit layers dequantised to fp32 on wasm (activations counted at that scale,
    // the safe side), float32 embedding and head as stored
    const held = { wasm: scale * (layers + act) + extras, webgpu: layers + act + extras };
    for (const backend of ['wasm', 'webgpu'] as const) {
      const fits = (budget: number) => evaluatePlan(planProblemFor(request(backend, budget)), whole).stages[0].memoryOk;
      // within the files' norm vectors and padding, which the cost model leaves out
      expect(fits(held[backend] * 1.05), backend).toBe(true);
      expect(fits(held[backend] * 0.95), backend).toBe(false);
    }
    // an fp32 package counts as stored, on either backend
    const fp32 = { ...request('wasm', 1e9), manifest: { ...manifest, dtype: 'fp32' as const } };
    expect(planProblemFor(fp32).devices[0].memoryBytes).toBe(1e9);
    expect(planProblemFor(fp32).devices[0].extrasMemoryScale).toBe(1);
  });

  it('reads each unit at the size the converter stores it: fp32, fp16 and q4 packages (q4 keeps the embedding and head in float32)', async () => {
    for (const dtype of ['fp32', 'fp16', 'q4'] as const) {
      const manifest = (await testPackage('qwen3', true, dtype)).reader.manifest;
      const model = planProblemFor({
        manifest,
        tokens: 64,
        method: 'dp',
        memoryModel: 'max',
        candidates: [{ peerId: 'p1', displayName: 'page 1', profile: sampleProfile(1) }],
      }).model;
      const stored = (kind: 'embed' | 'layer' | 'head') => manifest.units.find((u) => u.kind === kind)!.bytes;
      // the unit files also hold norm vectors and alignment padding, which the cost model leaves out
      expect(embeddingCost(model, 64).paramBytes / stored('embed'), `${dtype} embedding`).toBeCloseTo(1, 1);
      expect(headCost(model, 64).paramBytes / stored('head'), `${dtype} head`).toBeCloseTo(1, 1);
      expect(layerCost(model, 64).paramBytes / stored('layer'), `${dtype} layer`).toBeCloseTo(1, 1);
    }
  });
});

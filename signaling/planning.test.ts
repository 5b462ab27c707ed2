import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluatePlan } from '../planner/index.ts';
import { bytesPerParamFor, planProblemFor, residentWeightScale, type PlanRequest } from './planning.ts';
import { profileReportSchema } from '../core/protocol.ts';
import { sampleProfile, writeSyntheticPackage } from './test-support.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'tandem-planning-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

  it('a wasm page whose budget holds a q4 stage as stored, not as held, cannot take it; a WebGPU page can', async () => {
    const stored = await writeSyntheticPackage(path.join(dir, 'q4'), { layers: 4 });
    const manifest = { ...stored, dtype: 'q4' as const };
    const whole = [{ device: 0, layers: { start: 0, end: 4 } }];
    const request = (backend: 'wasm' | 'webgpu', memoryBytes: number): PlanRequest => ({
      manifest,
      tokens: 64,
      method: 'dp',
      memoryModel: 'max',
      candidates: [{ peerId: 'p1', displayName: 'page 1', profile: sampleProfile(1, { backend, memoryBytes }) }],
    });
    const need = evaluatePlan(planProblemFor(request('webgpu', 1e15)), whole).stages[0].memoryBytes!;
    // a budget of twice the stored need: enough for 4-bit weights, not for their fp32 copy (6.4x)
    expect(evaluatePlan(planProblemFor(request('webgpu', 2 * need)), whole).stages[0].memoryOk).toBe(true);
    expect(evaluatePlan(planProblemFor(request('wasm', 2 * need)), whole).stages[0].memoryOk).toBe(false);
    expect(planProblemFor(request('wasm', 2 * need)).devices[0].memoryBytes).toBeCloseTo((2 * need * 0.625) / 4, 6);
    // the same package as fp32 counts as stored
    const fp32 = { ...request('wasm', 2 * need), manifest: { ...stored, dtype: 'fp32' as const } };
    expect(planProblemFor(fp32).devices[0].memoryBytes).toBe(2 * need);
  });
});

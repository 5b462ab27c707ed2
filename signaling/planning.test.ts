import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluatePlan } from '../planner/index.ts';
import { planProblemFor, type PlanRequest } from './planning.ts';
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

/** Plans computed in the worker thread equal plans computed inline, errors keep their code. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { planInline, PlannerPool } from './planner-pool.ts';
import type { PlanRequest } from './planning.ts';
import { sampleProfile, writeSyntheticPackage } from './test-support.ts';

const pool = new PlannerPool();
afterAll(() => pool.close());

it('plans in the worker thread exactly as inline, for every method', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tandem-pool-'));
  const manifest = await writeSyntheticPackage(dir, { layers: 16, unitBytes: 64 });
  await rm(dir, { recursive: true, force: true });
  const candidates = [1, 2, 3, 4].map((k) => ({ peerId: `p${k}`, displayName: `d${k}`, profile: sampleProfile(k) }));
  for (const method of ['dp', 'even', 'heuristic', 'single'] as const) {
    const request: PlanRequest = { manifest, candidates, tokens: 200, method, memoryModel: 'max' };
    const [inWorker, inline] = await Promise.all([pool.plan(request), planInline(request)]);
    expect(inWorker.ok).toBe(true);
    expect(inWorker).toEqual(inline);
  }
  const tooSmall = candidates.map((c) => ({ ...c, profile: { ...c.profile, memoryBytes: 2 ** 20 } }));
  const infeasible = await pool.plan({ manifest, candidates: tooSmall, tokens: 200, method: 'dp', memoryModel: 'max' });
  expect(infeasible).toMatchObject({ ok: false, code: 'plan-infeasible' });
  expect(pool.fallbackReason).toBeNull(); // the worker did the work, not the inline fallback
});

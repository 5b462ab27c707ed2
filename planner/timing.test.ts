import { describe, expect, it } from 'vitest';
import { layerCost } from './cost-model.ts';
import { TandemError } from '../core/errors.ts';
import { checkPlanShape, evaluatePlan } from './timing.ts';
import type { PlanProblem, PlanStage } from './types.ts';
import { ROUND_A, ROUND_MODEL, ROUND_P, ROUND_W, roundDevice } from './round-cost-fixture.ts';

const model = ROUND_MODEL;
const P = ROUND_P,
  W = ROUND_W,
  A = ROUND_A;
const dev = roundDevice;
// d0: 1 s/layer load, 0.5 s/layer compute, uplink 8 A bit/s; d1: 2 s/layer load, 1 s/layer compute.
const problem: PlanProblem = {
  model,
  devices: [dev('d0', 1, 0.5, 8 * A, 8 * A), dev('d1', 2, 1, 4 * A, 16 * A)],
  tokens: 8,
};

describe('timing model [17]-[24]', () => {
  it('the test model has the stated round costs', () => {
    const c = layerCost(model, 8);
    expect([c.paramBytes, c.flops, c.activationBytes]).toEqual([P, W, A]);
  });

  it('d0 then d1: d1 is still loading when d0 finishes (no wait)', () => {
    const tl = evaluatePlan(problem, [
      { device: 0, layers: { start: 0, end: 2 } },
      { device: 1, layers: { start: 2, end: 4 } },
    ]);
    const [s1, s2] = tl.stages;
    expect(s1).toMatchObject({ load: 2, wait: 0, comm: 0, compute: 1, startTime: 2, finishTime: 3 });
    // comm = 8A / min(up d0 = 8A, down d1 = 16A) = 1 s; start = max(load 4, 3) = 4
    expect(s2).toMatchObject({ load: 4, wait: 0, comm: 1, compute: 2, startTime: 4, finishTime: 7 });
    expect(tl.latency).toBe(7);
  });

  it('d1 then d0: d0 waits 4 s for the upstream stage', () => {
    const tl = evaluatePlan(problem, [
      { device: 1, layers: { start: 0, end: 2 } },
      { device: 0, layers: { start: 2, end: 4 } },
    ]);
    const [s1, s2] = tl.stages;
    expect(s1).toMatchObject({ load: 4, wait: 0, comm: 0, compute: 2, startTime: 4, finishTime: 6 });
    // comm = 8A / min(up d1 = 4A, down d0 = 8A) = 2 s
    expect(s2).toMatchObject({ load: 2, wait: 4, comm: 2, compute: 1, startTime: 6, finishTime: 9 });
    expect(tl.latency).toBe(9);
  });

  it('reports memory per stage without enforcing it', () => {
    const small = { ...problem, devices: problem.devices.map((d) => ({ ...d, memoryBytes: P + A })) };
    const tl = evaluatePlan(small, [
      { device: 0, layers: { start: 0, end: 1 } },
      { device: 1, layers: { start: 1, end: 4 } },
    ]);
    expect(tl.stages.map((s) => s.memoryOk)).toEqual([true, false]);
    expect(tl.memoryOk).toBe(false);
    expect(tl.stages[1].memoryBytes).toBe(3 * P + A); // 'max' model: max A + sum P
    const sum = evaluatePlan({ ...small, memoryModel: 'sum' }, [{ device: 0, layers: { start: 0, end: 4 } }]);
    expect(sum.stages[0].memoryBytes).toBe(4 * (P + A));
  });

  it('rejects plans that break [13]-[16], saying which stage', () => {
    const bad: [PlanStage[], RegExp][] = [
      [[], /no stages/],
      [
        [
          { device: 0, layers: { start: 0, end: 2 } },
          { device: 1, layers: { start: 3, end: 4 } },
        ],
        /stage 1 starts at layer 3/,
      ],
      [
        [
          { device: 0, layers: { start: 0, end: 3 } },
          { device: 1, layers: { start: 2, end: 4 } },
        ],
        /stage 1 starts at layer 2/,
      ],
      [
        [
          { device: 0, layers: { start: 0, end: 2 } },
          { device: 0, layers: { start: 2, end: 4 } },
        ],
        /more than one stage/,
      ],
      [
        [
          { device: 0, layers: { start: 0, end: 0 } },
          { device: 1, layers: { start: 0, end: 4 } },
        ],
        /stage 0 is empty/,
      ],
      [[{ device: 0, layers: { start: 0, end: 3 } }], /not all 4 layers/],
      [[{ device: 0, layers: { start: 0, end: 5 } }], /model has 4 layers/],
      [[{ device: 2, layers: { start: 0, end: 4 } }], /valid indices are 0..1/],
    ];
    for (const [stages, msg] of bad) {
      expect(() => checkPlanShape(4, 2, stages)).toThrow(msg);
      expect(() => evaluatePlan(problem, stages)).toThrow(TandemError);
    }
  });
});

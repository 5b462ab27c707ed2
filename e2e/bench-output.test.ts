import { describe, expect, it } from 'vitest';
import { goal, ratioGoal } from './bench-output.ts';

describe('bench goals', () => {
  it('compares the figure with the bound for each operator, and is not measured without a figure', () => {
    expect(goal('g', 50, '<=', 50)).toEqual({ name: 'g', value: 50, target: '<= 50', met: true });
    expect(goal('g', 50.5, '<=', 50).met).toBe(false);
    expect(goal('g', 0.8, '>=', 0.8).met).toBe(true);
    expect(goal('g', 0.79, '>=', 0.8).met).toBe(false);
    expect(goal('g', 9, '=', 10)).toEqual({ name: 'g', value: 9, target: '= 10', met: false });
    expect(goal('g', null, '<=', 50)).toEqual({ name: 'g', value: null, target: '<= 50', met: null });
    expect(goal('g', undefined, '=', 10).value).toBeNull();
  });

  it('takes a ratio only of two figures with a positive denominator', () => {
    expect(ratioGoal('r', 3, 4, '<=', 0.8)).toEqual({ name: 'r', value: 0.75, target: '<= 0.8', met: true });
    expect(ratioGoal('r', 3, 0, '<=', 0.8).met).toBeNull();
    expect(ratioGoal('r', null, 4, '>=', 0.5).value).toBeNull();
  });
});

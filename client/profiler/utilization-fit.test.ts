import { describe, expect, it } from 'vitest';
import { fitUtilization, utilizationAt, type UtilizationSample } from './utilization-fit.ts';
import { TandemError } from '../../core/errors.ts';
import { mulberry32 as rng } from '../../core/random.ts';

const SWEEP = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];

function sse(samples: UtilizationSample[], a: number, b: number): number {
  return samples.reduce((acc, s) => acc + (utilizationAt(a, b, s.tokens) - s.utilization) ** 2, 0);
}

describe('fitUtilization', () => {
  it.each([
    // the paper's Table 1 devices
    [0.4, 5.1e-4],
    [0.7, 8.7e-4],
    [0.8, 1.1e-3],
    [0.8, 1.8e-3],
    // a browser-like curve that saturates within a few dozen tokens
    [0.95, 0.08],
  ])('recovers a=%f b=%f from exact samples', (a, b) => {
    const samples = SWEEP.map((tokens) => ({ tokens, utilization: utilizationAt(a, b, tokens) }));
    const fit = fitUtilization(samples);
    expect(fit.a).toBeCloseTo(a, 6);
    expect(Math.abs(fit.b - b) / b).toBeLessThan(1e-5);
    expect(fit.rmse).toBeLessThan(1e-8);
    expect(fit.r2).toBeGreaterThan(0.999999);
  });

  it('on noisy samples is at least as good as a brute-force (a, b) grid search', () => {
    const rand = rng(42);
    const samples = SWEEP.map((tokens) => ({
      tokens,
      utilization: utilizationAt(0.6, 2e-3, tokens) * (1 + 0.05 * (rand() * 2 - 1)),
    }));
    const fit = fitUtilization(samples);
    // independent reference: exhaustive grid over a in [0, 1.2] and log b in [1e-5, 1]
    let bestSse = Infinity;
    for (let i = 0; i <= 600; i++) {
      const a = (1.2 * i) / 600;
      for (let j = 0; j <= 600; j++) {
        const b = Math.exp(Math.log(1e-5) + ((Math.log(1) - Math.log(1e-5)) * j) / 600);
        bestSse = Math.min(bestSse, sse(samples, a, b));
      }
    }
    expect(sse(samples, fit.a, fit.b)).toBeLessThanOrEqual(bestSse * (1 + 1e-9));
    expect(fit.a).toBeGreaterThan(0.55);
    expect(fit.a).toBeLessThan(0.65);
    expect(fit.maxRelError).toBeGreaterThan(0);
    expect(fit.maxRelError).toBeLessThan(0.15);
    // rmse matches its definition
    expect(fit.rmse).toBeCloseTo(Math.sqrt(sse(samples, fit.a, fit.b) / samples.length), 12);
  });

  it('fits a flat sweep (utilisation already saturated at t=1) with a large b', () => {
    const samples = [16, 32, 64, 128].map((tokens) => ({ tokens, utilization: 0.9 }));
    const fit = fitUtilization(samples);
    expect(fit.a).toBeCloseTo(0.9, 6);
    expect(utilizationAt(fit.a, fit.b, 16)).toBeCloseTo(0.9, 6);
  });

  it('with aMax: a stays at most aMax and the fit is as good as a brute-force grid under that bound', () => {
    // a sweep cut short while still rising: the free fit wants a > 1
    const samples = [1, 2, 4, 8, 16].map((tokens) => ({ tokens, utilization: utilizationAt(3, 0.02, tokens) / 0.9 }));
    expect(fitUtilization(samples).a).toBeGreaterThan(1);
    const fit = fitUtilization(samples, { aMax: 1 });
    expect(fit.a).toBeLessThanOrEqual(1);
    let bestSse = Infinity;
    for (let i = 0; i <= 400; i++) {
      const a = i / 400;
      for (let j = 0; j <= 600; j++) {
        const b = Math.exp(Math.log(1e-5) + ((Math.log(10) - Math.log(1e-5)) * j) / 600);
        bestSse = Math.min(bestSse, sse(samples, a, b));
      }
    }
    expect(sse(samples, fit.a, fit.b)).toBeLessThanOrEqual(bestSse * (1 + 1e-9));
  });

  it('rejects too few or invalid points with a coded error', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof TandemError ? e.code : 'other';
      }
      return 'none';
    };
    expect(code(() => fitUtilization([{ tokens: 4, utilization: 0.5 }]))).toBe('profile-fit-invalid');
    expect(
      code(() =>
        fitUtilization([
          { tokens: 0, utilization: 0.5 },
          { tokens: 4, utilization: 0.5 },
        ]),
      ),
    ).toBe('profile-fit-invalid');
    expect(
      code(() =>
        fitUtilization([
          { tokens: 4, utilization: NaN },
          { tokens: 8, utilization: 0.5 },
        ]),
      ),
    ).toBe('profile-fit-invalid');
  });
});

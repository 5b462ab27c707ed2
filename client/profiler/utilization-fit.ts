/**
 * Fit of the CSGO utilisation curve U(t) = a (1 - exp(-b t)) (paper eq. [8]) to a workload sweep.
 *
 * Pure: no DOM, no Node. The profiler measures achieved FLOP/s at several token counts t, takes the
 * best kernel's FLOP/s as the peak c*, and fits a and b to the utilisations u_i = F_i / c*.
 *
 * Method: for a fixed b the least-squares a is closed form,
 *     g_i = 1 - exp(-b t_i),   a(b) = sum u_i g_i / sum g_i^2,
 * so the fit is a one-dimensional search over b: a log-spaced scan over [bMin, bMax] followed by a
 * golden-section refinement around the best grid point. The residual is not guaranteed unimodal in b,
 * which is why the coarse scan comes first.
 */
import { TandemError } from '../../core/errors.ts';

/** One point of the sweep: t tokens (rows of the activation matrix), measured utilisation u = F / c*. */
export interface UtilizationSample {
  tokens: number;
  utilization: number;
}

export interface UtilizationFit {
  /** Saturation level of U(t), dimensionless. */
  a: number;
  /** Rate, per token. */
  b: number;
  /** Root-mean-square of (U(t_i) - u_i), dimensionless (utilisation units). */
  rmse: number;
  /** Largest |U(t_i) - u_i| / u_i over the samples. */
  maxRelError: number;
  /** Coefficient of determination; 1 is a perfect fit, NaN when all u_i are equal. */
  r2: number;
  samples: number;
}

export interface FitOptions {
  /** Search range for b, per token. Defaults cover t from 1 to ~10^6. */
  bMin?: number;
  bMax?: number;
  gridPoints?: number;
  /**
   * Largest a allowed. A sweep cut short before it saturates (a slow device) fits best with a > 1, i.e.
   * U(t) rising past the best measured point; aMax = 1 keeps the measured peak as the ceiling instead.
   */
  aMax?: number;
}

/** U(t) = a (1 - e^{-b t}). */
export function utilizationAt(a: number, b: number, tokens: number): number {
  return a * (1 - Math.exp(-b * tokens));
}

/**
 * Least-squares a (at most aMax) for a fixed b, and the sum of squared residuals it leaves. For fixed b the
 * residual is a convex quadratic in a, so clamping the free minimiser gives the constrained one.
 */
function bestAForB(samples: readonly UtilizationSample[], b: number, aMax: number): { a: number; sse: number } {
  let ug = 0;
  let gg = 0;
  for (const s of samples) {
    const g = 1 - Math.exp(-b * s.tokens);
    ug += s.utilization * g;
    gg += g * g;
  }
  const a = Math.min(aMax, gg > 0 ? ug / gg : 0);
  let sse = 0;
  for (const s of samples) {
    const r = utilizationAt(a, b, s.tokens) - s.utilization;
    sse += r * r;
  }
  return { a, sse };
}

/** Fits a and b; throws TandemError('profile-fit-invalid') on unusable input. */
export function fitUtilization(samples: readonly UtilizationSample[], options: FitOptions = {}): UtilizationFit {
  if (samples.length < 2) {
    throw new TandemError(
      'profile-fit-invalid',
      `The utilisation fit needs at least 2 sweep points, got ${samples.length}; run the matmul sweep at more sizes.`,
    );
  }
  for (const s of samples) {
    if (!(Number.isFinite(s.tokens) && s.tokens > 0 && Number.isFinite(s.utilization) && s.utilization >= 0)) {
      throw new TandemError(
        'profile-fit-invalid',
        `Bad sweep point (tokens=${s.tokens}, utilization=${s.utilization}): tokens must be > 0 and utilisation a finite number >= 0.`,
      );
    }
  }
  const bMin = options.bMin ?? 1e-7;
  const bMax = options.bMax ?? 10;
  const gridPoints = options.gridPoints ?? 400;
  const aMax = options.aMax ?? Infinity;
  const logMin = Math.log(bMin);
  const logMax = Math.log(bMax);

  // 1. coarse log-spaced scan over b
  let bestIdx = 0;
  let bestSse = Infinity;
  for (let i = 0; i < gridPoints; i++) {
    const b = Math.exp(logMin + ((logMax - logMin) * i) / (gridPoints - 1));
    const { sse } = bestAForB(samples, b, aMax);
    if (sse < bestSse) {
      bestSse = sse;
      bestIdx = i;
    }
  }

  // 2. golden-section refinement in log b between the grid neighbours of the best point
  const step = (logMax - logMin) / (gridPoints - 1);
  let lo = Math.max(logMin, logMin + step * (bestIdx - 1));
  let hi = Math.min(logMax, logMin + step * (bestIdx + 1));
  const phi = (Math.sqrt(5) - 1) / 2;
  let x1 = hi - phi * (hi - lo);
  let x2 = lo + phi * (hi - lo);
  let f1 = bestAForB(samples, Math.exp(x1), aMax).sse;
  let f2 = bestAForB(samples, Math.exp(x2), aMax).sse;
  for (let iter = 0; iter < 80; iter++) {
    if (f1 < f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - phi * (hi - lo);
      f1 = bestAForB(samples, Math.exp(x1), aMax).sse;
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + phi * (hi - lo);
      f2 = bestAForB(samples, Math.exp(x2), aMax).sse;
    }
  }
  const b = Math.exp((lo + hi) / 2);
  const { a, sse } = bestAForB(samples, b, aMax);

  // 3. error figures
  const n = samples.length;
  const mean = samples.reduce((acc, s) => acc + s.utilization, 0) / n;
  const sst = samples.reduce((acc, s) => acc + (s.utilization - mean) ** 2, 0);
  let maxRelError = 0;
  for (const s of samples) {
    const rel = s.utilization > 0 ? Math.abs(utilizationAt(a, b, s.tokens) - s.utilization) / s.utilization : 0;
    maxRelError = Math.max(maxRelError, rel);
  }
  return { a, b, rmse: Math.sqrt(sse / n), maxRelError, r2: sst > 0 ? 1 - sse / sst : NaN, samples: n };
}

/**
 * Robust one-dimensional fits for calibration (pure): the median, and the Theil-Sen line (the median of
 * the slopes between every pair of points), which ignores up to ~29% of outliers where least squares
 * would be pulled by one bad request.
 */

/** Median of the finite values; NaN when there are none. */
export function median(values: readonly number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * The median of the larger half of the values (of n, the ceil(n / 2) largest): a rate estimate for
 * timings that other work only ever lengthens. Each value is then a lower bound of the clean rate; the
 * larger half keeps the clean samples and drops the disturbed ones (one value: itself; two: the larger).
 */
export function upperHalfMedian(values: readonly number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => b - a);
  return median(v.slice(0, Math.ceil(v.length / 2)));
}

export interface Line {
  intercept: number;
  slope: number;
}

/**
 * Theil-Sen fit y = intercept + slope x. Pairs whose x differ by less than `minSpread` (relative to the
 * larger) are skipped: their slope is noise. Null when no pair is spread enough (one size only).
 */
export function theilSen(points: readonly { x: number; y: number }[], minSpread = 0.2): Line | null {
  const slopes: number[] = [];
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) {
      const a = points[i];
      const b = points[j];
      const dx = b.x - a.x;
      if (Math.abs(dx) < minSpread * Math.max(Math.abs(a.x), Math.abs(b.x))) continue;
      slopes.push((b.y - a.y) / dx);
    }
  }
  if (slopes.length === 0) return null;
  const slope = median(slopes);
  const intercept = median(points.map((p) => p.y - slope * p.x));
  return { intercept, slope };
}

/**
 * Least squares for per-node values from sums over subsets of nodes: minimise sum over rows
 * (sum_{k in members} x_k - value)^2 + ridge sum_k (x_k - prior_k)^2. The ridge keeps nodes the rows do not
 * separate (only their sum is known) at their prior; with ridge << 1 the rows decide wherever they can.
 */
export function subsetSumLeastSquares(
  count: number,
  rows: readonly { members: readonly number[]; value: number }[],
  prior: readonly number[],
  ridge = 1e-3,
): number[] {
  // Normal equations M x = v, M = sum e_S e_S^T + ridge I (symmetric positive definite).
  const M = Array.from({ length: count }, () => new Float64Array(count));
  const v = new Float64Array(count);
  for (let k = 0; k < count; k++) {
    M[k][k] = ridge;
    v[k] = ridge * prior[k];
  }
  for (const { members, value } of rows) {
    for (const i of members) {
      for (const j of members) M[i][j] += 1;
      v[i] += value;
    }
  }
  // Gaussian elimination with partial pivoting (count <= 32).
  for (let c = 0; c < count; c++) {
    let p = c;
    for (let r = c + 1; r < count; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    [v[c], v[p]] = [v[p], v[c]];
    for (let r = c + 1; r < count; r++) {
      const f = M[r][c] / M[c][c];
      if (f === 0) continue;
      for (let k = c; k < count; k++) M[r][k] -= f * M[c][k];
      v[r] -= f * v[c];
    }
  }
  const x = new Array<number>(count).fill(0);
  for (let r = count - 1; r >= 0; r--) {
    let s = v[r];
    for (let k = r + 1; k < count; k++) s -= M[r][k] * x[k];
    x[r] = s / M[r][r];
  }
  return x;
}

/** Pair sums x_a + x_b = value: subsetSumLeastSquares with two-node rows. */
export function pairSumLeastSquares(
  count: number,
  pairs: readonly { a: number; b: number; value: number }[],
  prior: readonly number[],
  ridge = 1e-3,
): number[] {
  return subsetSumLeastSquares(
    count,
    pairs.map((p) => ({ members: [p.a, p.b], value: p.value })),
    prior,
    ridge,
  );
}

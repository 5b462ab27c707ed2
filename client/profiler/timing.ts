/** Small timing helpers shared by the benchmarks. */

/** Median of a non-empty list (mean of the two middle values for even lengths); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Resolves after `seconds` (no-op for <= 0). */
export function sleepSeconds(seconds: number): Promise<void> {
  if (!(seconds > 0)) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

/** Yields to the event loop so that progress can paint. */
export function nextFrame(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

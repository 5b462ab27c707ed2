/**
 * CPU matmul benchmark for pages without WebGPU: the stage then runs on onnxruntime-web's wasm
 * backend, so this measures what the page's CPU achieves on the same (t x D) @ (D x D) workload in
 * plain JS over Float32Array (an i-k-j loop the JIT vectorises poorly, like a scalar wasm kernel). It is
 * a proxy for ORT's wasm MatMul, labelled so in the profile's `method`. Same protocol as the WebGPU
 * sweep: one warm-up dropped, median of the rest, emulation sleeps inside the timed region.
 */
import { computeStretch, type Emulation } from './emulation.ts';
import type { MatmulPoint } from './webgpu-matmul.ts';
import { median, nextFrame, sleepSeconds } from './timing.ts';

/** Y (M, N) = X (M, K) @ W (K, N), row-major. */
export function matmulInto(y: Float32Array, x: Float32Array, w: Float32Array, m: number, k: number, n: number): void {
  y.fill(0);
  for (let i = 0; i < m; i++) {
    const yRow = i * n;
    for (let p = 0; p < k; p++) {
      const xv = x[i * k + p];
      const wRow = p * n;
      for (let j = 0; j < n; j++) y[yRow + j] += xv * w[wRow + j];
    }
  }
}

/** Small matmuls are repeated inside one timed sample so that timer resolution does not dominate. */
const MIN_SAMPLE_SECONDS = 0.008;
const MAX_REPS = 64;

export interface CpuBenchOptions {
  sweep: readonly number[];
  dim: number;
  runs: number;
  emulation: Emulation | null;
  onProgress?: (done: number, total: number) => void;
}

export async function benchmarkCpu(options: CpuBenchOptions): Promise<{ points: MatmulPoint[]; method: string }> {
  const { dim } = options;
  const w = new Float32Array(dim * dim).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
  const sizes = options.sweep.map((tokens) => ({
    tokens,
    x: new Float32Array(tokens * dim).map((_, i) => ((i * 40503) % 997) / 997 - 0.5),
    y: new Float32Array(tokens * dim),
    reps: 1,
    times: [] as number[],
  }));
  /** One timed sample: `reps` matmuls, seconds per matmul (emulation included). */
  const sample = async (s: (typeof sizes)[number], reps: number): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) matmulInto(s.y, s.x, w, s.tokens, dim, dim);
    await sleepSeconds(computeStretch(options.emulation, (performance.now() - t0) / 1000));
    const perOp = (performance.now() - t0) / 1000 / reps;
    await nextFrame();
    return perOp;
  };
  const total = sizes.length * (options.runs + 1);
  let done = 0;
  // warm-up of every size (JIT): dropped; it also sizes the samples so each lasts >= MIN_SAMPLE_SECONDS
  for (const s of sizes) {
    s.reps = Math.max(1, Math.min(MAX_REPS, Math.ceil(MIN_SAMPLE_SECONDS / Math.max(await sample(s, 1), 1e-6))));
    options.onProgress?.(++done, total);
  }
  // rounds over all sizes, so that a burst of load from elsewhere hits every size alike
  for (let r = 0; r < options.runs; r++) {
    for (const s of sizes) {
      s.times.push(await sample(s, s.reps));
      options.onProgress?.(++done, total);
    }
  }
  const points = sizes.map((s): MatmulPoint => {
    const seconds = median(s.times);
    return { tokens: s.tokens, dim, seconds, runs: options.runs, flops: (2 * s.tokens * dim * dim) / seconds };
  });
  return {
    points,
    method: `JS fp32 matmul (t x ${dim}) @ (${dim} x ${dim}) on the main thread (proxy for the wasm backend), repeated to >= 8 ms per sample; warm-up dropped, median of ${options.runs} rounds over all sizes`,
  };
}

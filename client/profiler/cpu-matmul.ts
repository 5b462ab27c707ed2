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
      const xv = x[i * k + p]!;
      const wRow = p * n;
      for (let j = 0; j < n; j++) y[yRow + j]! += xv * w[wRow + j]!;
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
  const points: MatmulPoint[] = [];
  for (let s = 0; s < options.sweep.length; s++) {
    const tokens = options.sweep[s]!;
    const x = new Float32Array(tokens * dim).map((_, i) => ((i * 40503) % 997) / 997 - 0.5);
    const y = new Float32Array(tokens * dim);
    /** One timed sample: `reps` matmuls, seconds per matmul. */
    const sample = async (reps: number): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) matmulInto(y, x, w, tokens, dim, dim);
      await sleepSeconds(computeStretch(options.emulation, (performance.now() - t0) / 1000));
      const perOp = (performance.now() - t0) / 1000 / reps;
      await nextFrame();
      return perOp;
    };
    // warm-up (JIT): dropped; it also sizes the samples so each lasts >= MIN_SAMPLE_SECONDS
    const warm = await sample(1);
    const reps = Math.max(1, Math.min(MAX_REPS, Math.ceil(MIN_SAMPLE_SECONDS / Math.max(warm, 1e-6))));
    const times: number[] = [];
    for (let r = 0; r < options.runs; r++) times.push(await sample(reps));
    const seconds = median(times);
    points.push({ tokens, dim, seconds, runs: options.runs, flops: (2 * tokens * dim * dim) / seconds });
    options.onProgress?.(s + 1, options.sweep.length);
  }
  return { points, method: `JS fp32 matmul (t x ${dim}) @ (${dim} x ${dim}) on the main thread (proxy for the wasm backend), repeated to >= 8 ms per sample; 1 warm-up dropped, median of ${options.runs}` };
}

/**
 * Session-creation benchmark: a stage's cold-start "load" is the IndexedDB read of its weights PLUS the
 * onnxruntime-web session creation from them, and the first session in a page also pays a one-off
 * wasm/WebGPU runtime compile. This module
 *   1. warms the runtime: creates (and runs once, and releases) a small session on the backend the page
 *      will use, so the one-off compile is paid while profiling, not on a request's critical path;
 *   2. times session creation from a synthetic MatMul-chain model whose weights (known bytes) come as
 *      external data, like a stage's units: median of a few creations after the warm-up ones;
 *   3. combines that with the IndexedDB read rate into the effective load rate the planner uses:
 *      r_eff = 1 / (1/read + 1/create), so bytes / r_eff = bytes / read + bytes / create.
 * The pure parts (`buildMatmulChainModel`, `medianAfterWarmup`, `effectiveLoadRate`) import no DOM or
 * Node APIs and are unit-tested; `benchmarkSessionCreate` takes any StageRuntime.
 */
import { TandemError } from '../../core/errors.ts';
import { GraphBuilder } from '../../shards/onnx/builder.ts';
import { DataType, encodeModel } from '../../shards/onnx/model.ts';
import type { ExecutionBackend, HostTensor, StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import { median } from './timing.ts';

export const SYNTHETIC_WEIGHTS_FILE = 'profiler-weights.bin';

export interface SyntheticModel {
  model: Uint8Array;
  externalData: { path: string; data: Uint8Array }[];
  /** bytes of weights (the external-data file) */
  weightBytes: number;
  dim: number;
  layers: number;
}

/**
 * y = x · W1 · W2 · … · Wn with x [1, dim] and every W [dim, dim] fp32 in one external-data file (offsets
 * in order). Weights are small pseudo-random values so the chain neither overflows nor vanishes.
 */
export function buildMatmulChainModel(dim: number, layers: number, seed = 1): SyntheticModel {
  if (!Number.isInteger(dim) || dim < 1 || !Number.isInteger(layers) || layers < 1) {
    throw new TandemError(
      'bench-invalid',
      `A synthetic model needs a positive integer size and layer count (got dim ${dim}, ${layers} layers).`,
    );
  }
  const matBytes = dim * dim * 4;
  const data = new Uint8Array(matBytes * layers);
  const f = new Float32Array(data.buffer);
  const scale = 1 / Math.sqrt(dim);
  let s = (seed * 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < f.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    f[i] = (((s >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  const g = new GraphBuilder();
  let x = g.input('x', DataType.FLOAT, [1, dim]);
  for (let l = 0; l < layers; l++) {
    const w = g.initializer({
      name: `w${l}`,
      dataType: DataType.FLOAT,
      dims: [dim, dim],
      external: { location: SYNTHETIC_WEIGHTS_FILE, offset: l * matBytes, length: matBytes },
    });
    x = g.op('MatMul', [x, w], `matmul${l}`);
  }
  g.node('Identity', [x], { name: 'out', outputs: ['y'] });
  g.output('y', DataType.FLOAT, [1, dim]);
  const model = encodeModel({
    irVersion: 10,
    opsetImports: [{ domain: '', version: 21 }],
    producerName: 'tandem-profiler',
    producerVersion: '1',
    graph: g.graph('profiler_matmul_chain'),
  });
  return { model, externalData: [{ path: SYNTHETIC_WEIGHTS_FILE, data }], weightBytes: data.byteLength, dim, layers };
}

/** Median of `times` after dropping the first `warmup` (the warm-up runs pay one-off costs). */
export function medianAfterWarmup(times: readonly number[], warmup: number): number {
  if (!Number.isInteger(warmup) || warmup < 0)
    throw new TandemError('bench-invalid', `warm-up count must be a non-negative integer (got ${warmup}).`);
  const kept = times.slice(warmup);
  if (kept.length === 0)
    throw new TandemError(
      'bench-invalid',
      `${times.length} timings and ${warmup} warm-up runs leave nothing to take the median of.`,
    );
  return median(kept);
}

/**
 * Effective load rate (bytes/s) of two steps done one after the other on the same bytes: reading at
 * `readBytesPerSec`, then creating the session at `createBytesPerSec`. bytes / result = bytes / read +
 * bytes / create. A non-finite or null create rate leaves the read rate unchanged.
 */
export function effectiveLoadRate(readBytesPerSec: number, createBytesPerSec: number | null): number {
  if (!(readBytesPerSec > 0))
    throw new TandemError('bench-invalid', `read rate must be positive (got ${readBytesPerSec}).`);
  if (createBytesPerSec === null || !Number.isFinite(createBytesPerSec)) return readBytesPerSec;
  if (!(createBytesPerSec > 0))
    throw new TandemError('bench-invalid', `session-create rate must be positive (got ${createBytesPerSec}).`);
  return 1 / (1 / readBytesPerSec + 1 / createBytesPerSec);
}

export interface SessionBenchResult {
  backend: ExecutionBackend;
  /** weight bytes of the synthetic model */
  bytes: number;
  /** first creation + first run in this page: includes the one-off runtime compile (the warm-up) */
  warmupSeconds: number;
  /** every creation, warm-up included, in order (seconds) */
  createSeconds: number[];
  /** median creation seconds after the warm-up */
  medianCreateSeconds: number;
  sessionCreateBytesPerSec: number;
  method: string;
}

export interface SessionBenchOptions {
  runtime: StageRuntime;
  backend: ExecutionBackend;
  dim: number;
  layers: number;
  /** timed creations after the warm-up */
  runs: number;
  /** warm-up creations (the first also runs the session once), dropped from the median */
  warmup?: number;
}

export async function benchmarkSessionCreate(opts: SessionBenchOptions): Promise<SessionBenchResult> {
  const warmup = opts.warmup ?? 1;
  const m = buildMatmulChainModel(opts.dim, opts.layers);
  const times: number[] = [];
  let warmupSeconds = 0;
  for (let r = 0; r < warmup + opts.runs; r++) {
    const t0 = performance.now();
    const session = await opts.runtime.createSession({
      model: m.model,
      externalData: m.externalData,
      config: {},
      backend: opts.backend,
    });
    times.push((performance.now() - t0) / 1000);
    try {
      if (r === 0) {
        // one run compiles the kernels (WebGPU shaders, wasm code paths) the first request would otherwise compile
        const out = await session.run({
          x: { dtype: 'float32', dims: [1, opts.dim], data: new Float32Array(opts.dim).fill(1) },
        });
        // a broken backend may return without the output
        const y = out['y'] as HostTensor | undefined;
        if (!y || y.dtype !== 'float32' || y.data.length !== opts.dim || !Number.isFinite(y.data[0])) {
          throw new TandemError(
            'session-bench-bad-output',
            `The profiler's test session on ${opts.backend} returned an unusable output; ONNX Runtime may be broken on this browser.`,
          );
        }
        warmupSeconds = (performance.now() - t0) / 1000;
      }
    } finally {
      await session.release();
    }
  }
  const medianCreateSeconds = medianAfterWarmup(times, warmup);
  return {
    backend: opts.backend,
    bytes: m.weightBytes,
    warmupSeconds,
    createSeconds: times,
    medianCreateSeconds,
    sessionCreateBytesPerSec: m.weightBytes / medianCreateSeconds,
    method: `onnxruntime-web ${opts.backend} session from a ${opts.layers}×MatMul ${opts.dim}² fp32 graph, ${(m.weightBytes / 2 ** 20).toFixed(0)} MiB external data; median of ${opts.runs} creations after ${warmup} warm-up`,
  };
}

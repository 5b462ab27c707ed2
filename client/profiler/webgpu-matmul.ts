/// <reference types="@webgpu/types" />
/**
 * WebGPU matmul benchmark: X (t, D) @ W (D, D) -> Y (t, D) in WGSL at several token counts t (the
 * workload sweep), achieved FLOP/s = 2 t D^2 / time for each.
 *
 * Kernel: every invocation computes a 4 x 4 block of Y (four rows, one vec4 of columns) from vec4
 * loads, no workgroup memory: on SwiftShader barriers are slow and this plain kernel is the fastest.
 * Timing: the clock runs from submit to `queue.onSubmittedWorkDone()`. The first run of each size
 * (pipeline and cache warm-up) is dropped; small sizes repeat the dispatch inside one submit so a sample
 * lasts >= 8 ms; the median of the samples (seconds per dispatch) is reported. The
 * result is checked once against a CPU matmul (read back with mapAsync), so a broken adapter cannot
 * report a fast kernel. Emulation sleeps inside the timed region.
 */
import { TandemError } from '../../core/errors.ts';
import { computeStretch, type Emulation } from './emulation.ts';
import { median, sleepSeconds } from './timing.ts';

export interface GpuAdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  limits: Record<string, number>;
  features: string[];
}

export interface MatmulPoint {
  tokens: number;
  /** D: the matmul is (tokens x D) @ (D x D) */
  dim: number;
  /** median seconds per run (emulation included) */
  seconds: number;
  runs: number;
  flops: number;
}

export interface GpuBenchResult {
  adapter: GpuAdapterSummary;
  points: MatmulPoint[];
  /** max |GPU - CPU| / max |CPU| of the check */
  checkError: number;
  method: string;
}

/** Small kernels are repeated inside one timed sample so that timer and submit overheads stay small. */
const MIN_SAMPLE_SECONDS = 0.008;
const MAX_REPS = 32;

const WGSL = /* wgsl */ `
struct Dims { M: u32, K: u32, N: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;        // (M, K/4)
@group(0) @binding(1) var<storage, read> W: array<vec4<f32>>;        // (K, N/4)
@group(0) @binding(2) var<storage, read_write> Y: array<vec4<f32>>;  // (M, N/4)
@group(0) @binding(3) var<uniform> dims: Dims;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n4 = dims.N / 4u;
  let k4 = dims.K / 4u;
  let col = gid.x;
  let row0 = gid.y * 4u;
  if (col >= n4 || row0 >= dims.M) { return; }
  let last = dims.M - 1u;
  let r0 = row0 * k4;
  let r1 = min(row0 + 1u, last) * k4;
  let r2 = min(row0 + 2u, last) * k4;
  let r3 = min(row0 + 3u, last) * k4;
  var y0 = vec4<f32>(0.0);
  var y1 = vec4<f32>(0.0);
  var y2 = vec4<f32>(0.0);
  var y3 = vec4<f32>(0.0);
  for (var k = 0u; k < k4; k = k + 1u) {
    let w0 = W[(4u * k) * n4 + col];
    let w1 = W[(4u * k + 1u) * n4 + col];
    let w2 = W[(4u * k + 2u) * n4 + col];
    let w3 = W[(4u * k + 3u) * n4 + col];
    let x0 = X[r0 + k];
    let x1 = X[r1 + k];
    let x2 = X[r2 + k];
    let x3 = X[r3 + k];
    y0 = y0 + x0.x * w0 + x0.y * w1 + x0.z * w2 + x0.w * w3;
    y1 = y1 + x1.x * w0 + x1.y * w1 + x1.z * w2 + x1.w * w3;
    y2 = y2 + x2.x * w0 + x2.y * w1 + x2.z * w2 + x2.w * w3;
    y3 = y3 + x3.x * w0 + x3.y * w1 + x3.z * w2 + x3.w * w3;
  }
  Y[row0 * n4 + col] = y0;
  if (row0 + 1u < dims.M) { Y[(row0 + 1u) * n4 + col] = y1; }
  if (row0 + 2u < dims.M) { Y[(row0 + 2u) * n4 + col] = y2; }
  if (row0 + 3u < dims.M) { Y[(row0 + 3u) * n4 + col] = y3; }
}`;

/** Limits copied from the adapter as plain numbers (GPUSupportedLimits is not enumerable JSON). */
function limitsOf(adapter: GPUAdapter): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') out[key] = v;
  }
  return out;
}

export async function requestAdapter(): Promise<GPUAdapter> {
  if (typeof navigator === 'undefined' || !('gpu' in navigator) || !(navigator as { gpu?: GPU }).gpu) {
    throw new TandemError(
      'webgpu-unavailable',
      'This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome/Edge/Safari over HTTPS (WebGPU needs a secure context); the page will run on wasm instead.',
    );
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter)
    throw new TandemError(
      'webgpu-unavailable',
      'WebGPU exists but no adapter was granted (blocked GPU or driver); the page will run on wasm instead.',
    );
  return adapter;
}

// eslint-disable-next-line @typescript-eslint/require-await -- kept async: its callers (here and in profile.ts) await it as a promise
export async function summariseAdapter(adapter: GPUAdapter): Promise<GpuAdapterSummary> {
  // `adapter.info` exists only since Chrome 127 / Safari 18; older WebGPU browsers leave it undefined
  const info = (adapter as { info?: GPUAdapterInfo }).info;
  const limits = limitsOf(adapter);
  return {
    vendor: (info?.vendor ?? '').slice(0, 128),
    architecture: (info?.architecture ?? '').slice(0, 128),
    device: (info?.device ?? '').slice(0, 128),
    description: (info?.description ?? '').slice(0, 256),
    isFallbackAdapter:
      (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ??
      (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      false,
    limits: Object.fromEntries(Object.entries(limits).slice(0, 64)),
    features: [...adapter.features].slice(0, 64).map((f) => f.slice(0, 64)),
  };
}

/** Requests a device with every limit the adapter offers (the defaults are smaller). */
export async function requestFullDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const [k, v] of Object.entries(limitsOf(adapter))) requiredLimits[k] = v;
  try {
    return await adapter.requestDevice({ requiredLimits });
  } catch (cause) {
    throw new TandemError(
      'webgpu-unavailable',
      `The WebGPU adapter refused a device (${String(cause)}); the page will run on wasm instead.`,
      { cause },
    );
  }
}

function fillDeterministic(a: Float32Array, seed: number): void {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32) * 2 - 1;
  }
}

interface BenchContext {
  device: GPUDevice;
  pipeline: GPUComputePipeline;
}

interface SizeBench {
  tokens: number;
  /** One timed sample: `reps` dispatches in one submit; seconds per dispatch (emulation included). */
  sample(reps: number): Promise<number>;
  /** max |GPU - CPU| / max |CPU| over a column subset of Y. */
  check(): Promise<number>;
  destroy(): void;
}

function prepareSize(ctx: BenchContext, tokens: number, dim: number, emulation: Emulation | null): SizeBench {
  const { device, pipeline } = ctx;
  const x = new Float32Array(tokens * dim);
  const w = new Float32Array(dim * dim);
  fillDeterministic(x, tokens * 7 + 1);
  fillDeterministic(w, dim * 13 + 5);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const xBuf = device.createBuffer({ size: x.byteLength, usage });
  const wBuf = device.createBuffer({ size: w.byteLength, usage });
  const yBuf = device.createBuffer({ size: x.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const dimsBuf = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(xBuf, 0, x);
  device.queue.writeBuffer(wBuf, 0, w);
  device.queue.writeBuffer(dimsBuf, 0, new Uint32Array([tokens, dim, dim, 0]));
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [xBuf, wBuf, yBuf, dimsBuf].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  return {
    tokens,
    async sample(reps) {
      const enc = device.createCommandEncoder();
      for (let i = 0; i < reps; i++) {
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(Math.ceil(dim / 4 / 8), Math.ceil(tokens / 4 / 8));
        pass.end();
      }
      await device.queue.onSubmittedWorkDone(); // uploads and earlier work are not timed
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      await sleepSeconds(computeStretch(emulation, (performance.now() - t0) / 1000));
      return (performance.now() - t0) / 1000 / reps;
    },
    async check() {
      const read = device.createBuffer({
        size: x.byteLength,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(yBuf, 0, read, 0, x.byteLength);
      device.queue.submit([enc.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const y = new Float32Array(read.getMappedRange().slice(0));
      read.unmap();
      read.destroy();
      let maxDiff = 0;
      let maxRef = 0;
      for (let i = 0; i < tokens; i++) {
        for (let j = 0; j < dim; j += 17) {
          let ref = 0;
          for (let k = 0; k < dim; k++) ref += x[i * dim + k] * w[k * dim + j];
          maxDiff = Math.max(maxDiff, Math.abs(ref - y[i * dim + j]));
          maxRef = Math.max(maxRef, Math.abs(ref));
        }
      }
      return maxRef > 0 ? maxDiff / maxRef : maxDiff;
    },
    destroy() {
      for (const b of [xBuf, wBuf, yBuf, dimsBuf]) b.destroy();
    },
  };
}

export interface GpuBenchOptions {
  sweep: readonly number[];
  dim: number;
  runs: number;
  emulation: Emulation | null;
  onProgress?: (done: number, total: number) => void;
}

export async function benchmarkWebGpu(adapter: GPUAdapter, options: GpuBenchOptions): Promise<GpuBenchResult> {
  const summary = await summariseAdapter(adapter);
  const device = await requestFullDevice(adapter);
  try {
    const module = device.createShaderModule({ code: WGSL });
    const pipeline = await device.createComputePipelineAsync({
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
    });
    const ctx = { device, pipeline };
    const sizes = options.sweep.map((t) => prepareSize(ctx, t, options.dim, options.emulation));
    try {
      // warm-up of every size (dropped); it also sizes the samples so each lasts >= MIN_SAMPLE_SECONDS
      const total = sizes.length * (options.runs + 1);
      let done = 0;
      const reps: number[] = [];
      for (const b of sizes) {
        reps.push(Math.max(1, Math.min(MAX_REPS, Math.ceil(MIN_SAMPLE_SECONDS / Math.max(await b.sample(1), 1e-6)))));
        options.onProgress?.(++done, total);
      }
      const checkError = await sizes[Math.min(1, sizes.length - 1)].check();
      // rounds over all sizes, so that a burst of load from elsewhere hits every size alike
      const times: number[][] = sizes.map(() => []);
      for (let r = 0; r < options.runs; r++) {
        for (let i = 0; i < sizes.length; i++) {
          times[i].push(await sizes[i].sample(reps[i]));
          options.onProgress?.(++done, total);
        }
      }
      const points: MatmulPoint[] = sizes.map((b, i) => {
        const seconds = median(times[i]);
        return {
          tokens: b.tokens,
          dim: options.dim,
          seconds,
          runs: options.runs,
          flops: (2 * b.tokens * options.dim * options.dim) / seconds,
        };
      });
      if (checkError > 1e-3) {
        throw new TandemError(
          'webgpu-wrong-result',
          `The WebGPU matmul disagrees with the CPU (relative error ${checkError.toExponential(2)}); this GPU driver is unreliable, so the page will use wasm.`,
        );
      }
      return {
        adapter: summary,
        points,
        checkError,
        method: `WGSL fp32 matmul (t x ${options.dim}) @ (${options.dim} x ${options.dim}), 4x4 outputs per invocation; submit -> onSubmittedWorkDone, dispatches repeated to >= 8 ms per sample; warm-up dropped, median of ${options.runs} rounds over all sizes`,
      };
    } finally {
      for (const b of sizes) b.destroy();
    }
  } finally {
    device.destroy();
  }
}

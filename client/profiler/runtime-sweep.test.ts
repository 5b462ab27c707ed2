/**
 * The runtime compute sweep against real runtimes: onnxruntime-node through the node StageRuntime, and
 * onnxruntime-web's wasm kernels behind the inference-worker protocol (the page's path) over a
 * MessageChannel. Points per t, FLOP/s = counted FLOPs / seconds, the fit, the check, the session's
 * life cycle; the emulated stretch and the early stop with a fake clock (no timing thresholds).
 */
import { describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../../shards/runtime/ort-node.ts';
import type { StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import { benchmarkRuntimeCompute, type RuntimeSweepOptions } from './runtime-sweep.ts';
import { matmulSweepProbe, stageProbeFlops, type StageProbeShape } from './stage-probe.ts';
import { fitUtilization } from './utilization-fit.ts';
import { wasmWorkerRuntime } from './wasm-worker-runtime-fixture.ts';

const shape: StageProbeShape = { dim: 32, ffn: 64, layers: 2 };
const sweep = [1, 2, 4, 8, 16];

/** Wraps a runtime, counting sessions created / released and runs; `corrupt` zeroes every output. */
function counting(inner: StageRuntime, corrupt = false) {
  const c = { created: 0, released: 0, runs: 0 };
  const runtime: StageRuntime = {
    async createSession(req) {
      const s = await inner.createSession(req);
      c.created++;
      return {
        backend: s.backend,
        inputNames: s.inputNames,
        outputNames: s.outputNames,
        async run(feeds) {
          c.runs++;
          const out = await s.run(feeds);
          if (!corrupt) return out;
          const y = out['y'];
          return { y: { dtype: 'float32', dims: y.dims, data: new Float32Array(y.data.length) } };
        },
        async release() {
          c.released++;
          await s.release();
        },
      };
    },
  };
  return { runtime, c };
}

const base = (runtime: StageRuntime): RuntimeSweepOptions => ({
  runtime,
  backend: 'node',
  probe: matmulSweepProbe(shape),
  sweep,
  runs: 2,
  emulation: null,
  runtimeLabel: 'onnxruntime-node cpu, 1 thread',
});

/** Advances 10 ms on every reading; a sleep advances it by what was asked and records the request. */
function fakeTime() {
  const t = { now: 0, sleeps: [] as number[] };
  return {
    t,
    clock: () => (t.now += 0.01),
    sleep: (s: number) => {
      t.sleeps.push(s);
      t.now += s;
      return Promise.resolve();
    },
  };
}

const workerRuntime = await wasmWorkerRuntime();

describe('benchmarkRuntimeCompute', () => {
  it('on onnxruntime-node: a point per t with FLOP/s = counted FLOPs / seconds, c* and the U(t) fit', async () => {
    const { runtime, c } = counting(createNodeRuntime('node'));
    const r = await benchmarkRuntimeCompute(base(runtime));
    expect(r.points.map((p) => p.tokens)).toEqual(sweep);
    expect(r.skippedTokens).toEqual([]);
    for (const p of r.points) {
      expect(p.seconds).toBeGreaterThan(0);
      expect(p.dim).toBe(shape.dim);
      expect(p.runs).toBe(2);
      expect(p.flops).toBeCloseTo(stageProbeFlops(shape, p.tokens) / p.seconds, 0);
    }
    expect(r.peakFlops).toBe(Math.max(...r.points.map((p) => p.flops)));
    expect(r.fit).toEqual(
      fitUtilization(
        r.points.map((p) => ({ tokens: p.tokens, utilization: p.flops / r.peakFlops })),
        { aMax: 1 },
      ),
    );
    expect(r.fit.a).toBeLessThanOrEqual(1);
    expect(r.fit.samples).toBe(sweep.length);
    expect(r.checkError).toBeLessThan(1e-5);
    expect(r.method).toContain('onnxruntime-node cpu, 1 thread');
    // one session, released; the check + a warm-up, a sizing run and 2 rounds per size, each of >= 1 run
    expect(c.created).toBe(1);
    expect(c.released).toBe(1);
    expect(c.runs).toBeGreaterThanOrEqual(1 + sweep.length * 4);
  });

  it("on onnxruntime-web wasm through the inference-worker protocol (the page's path)", async () => {
    const progress: number[] = [];
    const r = await benchmarkRuntimeCompute({
      ...base(workerRuntime),
      backend: 'wasm',
      runtimeLabel: 'onnxruntime-web wasm, 1 thread, in the inference worker',
      onProgress: (done, total) => progress.push(done / total),
    });
    expect(r.points.map((p) => p.tokens)).toEqual(sweep);
    expect(r.checkError).toBeLessThan(1e-5);
    for (const p of r.points) expect(p.flops).toBeCloseTo(stageProbeFlops(shape, p.tokens) / p.seconds, 0);
    expect(Number.isFinite(r.fit.a) && Number.isFinite(r.fit.b)).toBe(true);
    expect(progress).toHaveLength(sweep.length * 3);
    expect(progress.at(-1)).toBe(1);
  });

  it('sleeps (slow-down - 1) x the measured time inside the timed region', async () => {
    const plain = fakeTime();
    const slowed = fakeTime();
    const { runtime } = counting(createNodeRuntime('node'));
    const a = await benchmarkRuntimeCompute({ ...base(runtime), clock: plain.clock, sleep: plain.sleep });
    const b = await benchmarkRuntimeCompute({
      ...base(runtime),
      emulation: { label: 'x3', computeSlowdown: 3 },
      clock: slowed.clock,
      sleep: slowed.sleep,
    });
    // every sample measured 10 ms (one clock step): no emulation sleeps 0, x3 sleeps 20 ms
    expect(plain.t.sleeps.every((s) => s === 0)).toBe(true);
    expect(slowed.t.sleeps).toHaveLength(sweep.length * 2);
    for (const s of slowed.t.sleeps) expect(s).toBeCloseTo(0.02, 9);
    // the sleep counts in the sample: 10 ms run + 20 ms sleep + the closing clock step
    for (const p of a.points) expect(p.seconds).toBeCloseTo(0.02, 9);
    for (const p of b.points) expect(p.seconds).toBeCloseTo(0.04, 9);
  });

  it('ends the sweep after a size slower than maxSampleSeconds, keeping at least 2 sizes', async () => {
    const time = fakeTime();
    const { runtime } = counting(createNodeRuntime('node'));
    const r = await benchmarkRuntimeCompute({ ...base(runtime), maxSampleSeconds: 0.005, ...time });
    expect(r.points.map((p) => p.tokens)).toEqual([1, 2]);
    expect(r.skippedTokens).toEqual([4, 8, 16]);
    expect(r.method).toContain('stopped before t = 4');
  });

  it('past its time budget adds no size and starts no round after the first, keeping at least 2 sizes', async () => {
    const { runtime } = counting(createNodeRuntime('node'));
    const tight = fakeTime();
    const r = await benchmarkRuntimeCompute({ ...base(runtime), budgetSeconds: 0.001, ...tight });
    expect(r.points.map((p) => p.tokens)).toEqual([1, 2]);
    expect(r.skippedTokens).toEqual([4, 8, 16]);
    expect(r.points.map((p) => p.runs)).toEqual([1, 1]);
    expect(r.method).toContain('median of 1 round over all sizes');
    // 10 ms a clock reading: the whole sweep fits in a budget of 1 s
    const ample = fakeTime();
    const all = await benchmarkRuntimeCompute({ ...base(runtime), budgetSeconds: 1, ...ample });
    expect(all.points.map((p) => p.tokens)).toEqual(sweep);
    expect(all.points.every((p) => p.runs === 2)).toBe(true);
  });

  it('refuses a runtime that computes the wrong result, and releases its session', async () => {
    const { runtime, c } = counting(createNodeRuntime('node'), true);
    await expect(benchmarkRuntimeCompute(base(runtime))).rejects.toMatchObject({ code: 'compute-sweep-bad-output' });
    expect(c.created).toBe(1);
    expect(c.released).toBe(1);
  });

  it('rejects a sweep that is not ascending or too short', async () => {
    const { runtime, c } = counting(createNodeRuntime('node'));
    for (const bad of [[4], [4, 2], [1, 1.5]])
      await expect(benchmarkRuntimeCompute({ ...base(runtime), sweep: bad })).rejects.toMatchObject({
        code: 'bench-invalid',
      });
    expect(c.created).toBe(0);
  });
});

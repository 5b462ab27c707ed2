/**
 * The session-creation benchmark's pure parts against hand-worked values, and the synthetic model on
 * onnxruntime-web's wasm backend in Node (the page's ort-web.ts) against a plain JS matmul chain.
 */
import { describe, expect, it } from 'vitest';
import { createOrtWebRuntime } from '../runtime/ort-web.ts';
import type { StageRuntime } from '../../shards/runtime/stage-runtime.ts';
import {
  benchmarkSessionCreate,
  buildMatmulChainModel,
  effectiveLoadRate,
  medianAfterWarmup,
} from './session-bench.ts';

describe('effectiveLoadRate', () => {
  it('adds the two times per byte', () => {
    // 100 MB at 100 MB/s (1 s) then at 25 MB/s (4 s): 5 s in all = 20 MB/s
    expect(effectiveLoadRate(100e6, 25e6)).toBeCloseTo(20e6, 3);
    expect(effectiveLoadRate(50e6, 50e6)).toBeCloseTo(25e6, 3);
    // the slower step bounds it from above
    expect(effectiveLoadRate(1e9, 1e6)).toBeLessThan(1e6);
  });
  it('keeps the read rate when no create rate was measured', () => {
    expect(effectiveLoadRate(80e6, null)).toBe(80e6);
    expect(effectiveLoadRate(80e6, Infinity)).toBe(80e6);
  });
  it('rejects non-positive rates with a code', () => {
    expect(() => effectiveLoadRate(0, 1e6)).toThrow(expect.objectContaining({ code: 'bench-invalid' }));
    expect(() => effectiveLoadRate(1e6, -1)).toThrow(expect.objectContaining({ code: 'bench-invalid' }));
  });
});

describe('medianAfterWarmup', () => {
  it('drops the warm-up runs before taking the median', () => {
    expect(medianAfterWarmup([9, 1, 3, 2], 1)).toBe(2);
    expect(medianAfterWarmup([9, 8, 1, 3], 2)).toBe(2);
    expect(medianAfterWarmup([5, 4], 0)).toBe(4.5);
  });
  it('refuses to leave nothing', () => {
    expect(() => medianAfterWarmup([1, 2], 2)).toThrow(expect.objectContaining({ code: 'bench-invalid' }));
    expect(() => medianAfterWarmup([1, 2], -1)).toThrow(expect.objectContaining({ code: 'bench-invalid' }));
  });
});

/** onnxruntime-web's Node build: the same wasm kernels as the page. */
const runtime = createOrtWebRuntime({ ort: await import('onnxruntime-web') });

describe('buildMatmulChainModel + benchmarkSessionCreate', () => {
  it('builds a graph ORT runs to the same result as a plain JS matmul chain', async () => {
    const dim = 16;
    const layers = 3;
    const m = buildMatmulChainModel(dim, layers, 7);
    expect(m.weightBytes).toBe(dim * dim * 4 * layers);
    const w = new Float32Array(m.externalData[0].data.buffer.slice(0));
    const x = Float32Array.from({ length: dim }, (_, i) => (i % 5) - 2);
    let ref = Array.from(x, Number);
    for (let l = 0; l < layers; l++) {
      const next = new Array<number>(dim).fill(0);
      for (let k = 0; k < dim; k++) for (let j = 0; j < dim; j++) next[j] += ref[k] * w[l * dim * dim + k * dim + j];
      ref = next;
    }
    const s = await runtime.createSession({
      model: m.model,
      externalData: m.externalData,
      config: {},
      backend: 'wasm',
    });
    const y = (await s.run({ x: { dtype: 'float32', dims: [1, dim], data: x } }))['y'];
    await s.release();
    expect(y.dims).toEqual([1, dim]);
    const maxErr = Math.max(...Array.from(y.data as Float32Array, (v, i) => Math.abs(v - ref[i])));
    expect(maxErr).toBeLessThan(1e-5);
    expect(Math.max(...ref.map(Math.abs))).toBeGreaterThan(1e-3);
  });

  it('times warm-up + runs creations and reports bytes over the median after warm-up', async () => {
    let created = 0;
    let released = 0;
    const counting: StageRuntime = {
      async createSession(req) {
        created++;
        const s = await runtime.createSession(req);
        return {
          ...s,
          backend: s.backend,
          inputNames: s.inputNames,
          outputNames: s.outputNames,
          run: (feeds) => s.run(feeds),
          release: async () => {
            released++;
            await s.release();
          },
        };
      },
    };
    const r = await benchmarkSessionCreate({
      runtime: counting,
      backend: 'wasm',
      dim: 64,
      layers: 2,
      runs: 3,
      warmup: 1,
    });
    expect(created).toBe(4);
    expect(released).toBe(4);
    expect(r.createSeconds).toHaveLength(4);
    expect(r.bytes).toBe(64 * 64 * 4 * 2);
    expect(r.medianCreateSeconds).toBe(medianAfterWarmup(r.createSeconds, 1));
    expect(r.sessionCreateBytesPerSec).toBeCloseTo(r.bytes / r.medianCreateSeconds, 6);
    expect(r.warmupSeconds).toBeGreaterThanOrEqual(r.createSeconds[0]);
  });

  it('rejects a bad shape with a code', () => {
    expect(() => buildMatmulChainModel(0, 1)).toThrow(expect.objectContaining({ code: 'bench-invalid' }));
  });
});

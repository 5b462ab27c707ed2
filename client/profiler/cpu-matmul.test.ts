import { describe, expect, it } from 'vitest';
import { benchmarkCpu, matmulInto } from './cpu-matmul.ts';

describe('matmulInto', () => {
  it('matches a naive dot-product matmul', () => {
    const m = 3,
      k = 5,
      n = 4;
    const x = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i));
    const w = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i));
    const y = new Float32Array(m * n);
    matmulInto(y, x, w, m, k, n);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let ref = 0;
        for (let p = 0; p < k; p++) ref += x[i * k + p] * w[p * n + j];
        expect(y[i * n + j]).toBeCloseTo(ref, 5);
      }
  });
});

describe('benchmarkCpu', () => {
  it('reports FLOP/s consistent with its timings and honours a compute slow-down', async () => {
    const plain = await benchmarkCpu({ sweep: [8], dim: 64, runs: 3, emulation: null });
    const p = plain.points[0];
    expect(p.flops).toBeCloseTo((2 * 8 * 64 * 64) / p.seconds, 3);
    const slow = await benchmarkCpu({ sweep: [8], dim: 64, runs: 3, emulation: { label: 't', computeSlowdown: 50 } });
    // 50x slower compute: the stretch dominates, whatever the JIT does
    expect(slow.points[0].seconds).toBeGreaterThan(p.seconds * 10);
  });
});

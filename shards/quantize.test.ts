import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../core/random.ts';
import { dequantizeQ4, quantizeQ4 } from './quantize.ts';

describe('q4 block quantisation', () => {
  it('round-trips within half a step per block and keeps the block maximum exact', () => {
    const out = 5,
      inp = 96;
    const rand = mulberry32(7);
    const w = Float32Array.from({ length: out * inp }, (_, i) => (rand() - 0.5) * (1 + (i % 7)));
    const q = quantizeQ4(w, out, inp);
    expect(q.qweight.length).toBe((out * inp) / 2);
    expect(q.scales.length).toBe(out * 3);
    const d = dequantizeQ4(q, out, inp);
    for (let n = 0; n < out; n++) {
      for (let b = 0; b < 3; b++) {
        let amax = 0;
        for (let k = 0; k < 32; k++) amax = Math.max(amax, Math.abs(w[n * inp + b * 32 + k]));
        const scale = q.scales[n * 3 + b];
        expect(scale).toBeCloseTo(amax / 7, 6);
        for (let k = 0; k < 32; k++) {
          const i = n * inp + b * 32 + k;
          expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(scale / 2 + 1e-6);
        }
      }
    }
  });

  it('packs two values per byte, low nibble first, zero point 8 (MatMulNBits B layout)', () => {
    // one row, one block: w1 = 4, w2 = -4, w31 = 4/7, the rest 0; max |w| = 4 -> scale 4/7
    const w = new Float32Array(32);
    w[1] = 4;
    w[2] = -4;
    w[31] = 4 / 7; // exactly one step
    const q = quantizeQ4(w, 1, 32);
    expect(q.scales[0]).toBeCloseTo(4 / 7, 7);
    // w0 = 0 -> q 8 (low nibble), w1 = 4 -> q 15 (high nibble): byte 0 = 0xf8
    expect(q.qweight[0]).toBe(0xf8);
    // w2 = -4 -> q 1 (low), w3 = 0 -> 8 (high): 0x81
    expect(q.qweight[1]).toBe(0x81);
    // w30 = 0 -> 8 (low), w31 = one step -> 9 (high): 0x98
    expect(q.qweight[15]).toBe(0x98);
  });

  it('handles an all-zero block and rejects shapes that are not whole blocks', () => {
    const q = quantizeQ4(new Float32Array(64), 2, 32);
    expect([...q.scales]).toEqual([0, 0]);
    expect([...dequantizeQ4(q, 2, 32)].every((v) => v === 0)).toBe(true);
    expect(() => quantizeQ4(new Float32Array(40), 1, 40)).toThrow(expect.objectContaining({ code: 'q4-shape' }));
  });
});

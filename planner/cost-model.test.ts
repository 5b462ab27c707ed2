import { describe, expect, it } from 'vitest';
import { checkModel, embeddingCost, headCost, headDim, layerCost } from './cost-model.ts';
import { TandemError } from '../core/errors.ts';
import type { ModelConfig } from './types.ts';
import { QWEN3_14B } from './presets.ts';

/** Independent count: every matmul of a GQA + SwiGLU block as [in, out], at 2 FLOP per multiply-add. */
function countBlock(m: ModelConfig, t: number, kvOnce: boolean) {
  const d = m.hidden_size,
    hq = m.num_attention_heads,
    hk = m.num_key_value_heads,
    dh = m.head_dim ?? d / hq,
    f = m.intermediate_size;
  const kv: [number, number][] = kvOnce
    ? [[d, hk * dh]]
    : [
        [d, hk * dh],
        [d, hk * dh],
      ];
  const mats: [number, number][] = [[d, hq * dh], ...kv, [hq * dh, d], [d, f], [d, f], [f, d]];
  let flops = mats.reduce((a, [i, o]) => a + 2 * t * i * o, 0);
  flops += hq * (2 * t * t * dh + 2 * t * t * dh); // per query head: scores Q K^T [t,dh]x[dh,t], then A V [t,t]x[t,dh]
  const allMats: [number, number][] = [
    [d, hq * dh],
    [d, hk * dh],
    [d, hk * dh],
    [hq * dh, d],
    [d, f],
    [d, f],
    [f, d],
  ];
  const params = allMats.reduce((a, [i, o]) => a + i * o, 0);
  return { flops, params };
}

describe('cost model [1]-[7]', () => {
  it('Qwen3-14B: P = 630.0 MiB per layer in bf16, A = 2 t d_model', () => {
    const c = layerCost(QWEN3_14B, 256);
    expect(c.paramBytes / 2 ** 20).toBeCloseTo(630.0, 1);
    expect(c.activationBytes).toBe(2 * 256 * 5120);
  });

  it('W matches an explicit matmul count, as printed (K and V) and with K/V counted once', () => {
    for (const t of [1, 256, 8192]) {
      for (const m of [
        QWEN3_14B,
        { ...QWEN3_14B, head_dim: undefined, num_attention_heads: 32, num_key_value_heads: 4 },
      ]) {
        const ref = countBlock(m, t, false);
        expect(layerCost(m, t).flops).toBe(ref.flops);
        expect(layerCost(m, t).paramBytes).toBe(2 * ref.params);
        expect(layerCost(m, t, { kvProjections: 'once' }).flops).toBe(countBlock(m, t, true).flops);
      }
    }
  });

  it('head_dim defaults to hidden_size / num_attention_heads; bytes per activation default 2', () => {
    expect(headDim({ ...QWEN3_14B, head_dim: undefined })).toBe(128);
    expect(layerCost({ ...QWEN3_14B, bytesPerActivation: 4 }, 10).activationBytes).toBe(4 * 10 * 5120);
  });

  it('embedding and head costs: table [V, d], logits matmul 2 d V for the last position only', () => {
    const e = embeddingCost(QWEN3_14B, 100);
    expect(e.paramBytes).toBe(2 * 151936 * 5120);
    expect(e.flops).toBe(0);
    const h = headCost(QWEN3_14B, 100);
    expect(h.paramBytes).toBe(2 * (5120 + 5120 * 151936));
    expect(h.flops).toBeGreaterThanOrEqual(2 * 5120 * 151936);
    expect(h.flops).toBeLessThan(2 * 2 * 5120 * 151936); // not t rows: the graph slices the last position first
    expect(h).toEqual(headCost(QWEN3_14B, 1));
    expect(h.activationBytes).toBe(2 * 151936);
  });

  it('rejects a bad model naming the field', () => {
    expect(() => checkModel({ ...QWEN3_14B, hidden_size: 0 })).toThrow(/model\.hidden_size/);
    expect(() => checkModel({ ...QWEN3_14B, bytesPerParam: Number.NaN })).toThrow(TandemError);
  });
});

/**
 * The whole-model export keeps the transformers.js layout: logits for EVERY position, (1, S, V), equal to
 * the fp64 reference's rows (the stage graphs compute the last position only; stage-graph.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildFullModel } from './full-graph.ts';
import { createStageSession } from './runtime/ort-node.ts';
import type { HostTensor } from './runtime/stage-runtime.ts';
import { ReferenceModel } from './reference-forward.ts';
import { headDim } from './manifest.ts';
import { removeTestPackages, testPackage } from './stage-test-packages.ts';

afterAll(() => removeTestPackages());

describe('buildFullModel', () => {
  it('outputs logits (1, S, V) for every prompt position, matching the fp64 reference', async () => {
    const pkg = await testPackage('qwen3', true, 'fp32');
    const manifest = pkg.reader.manifest;
    const full = buildFullModel(manifest, (u) => pkg.unitBytes(u), { weights: 'inline', maxPositions: 64 });
    const session = await createStageSession('node', { model: full.model, externalData: [] });
    try {
      const ids = [17, 301, 5, 99, 250];
      const S = ids.length;
      const { num_key_value_heads: nkv, vocab_size: V, num_hidden_layers: L } = manifest.config;
      const feeds: Record<string, HostTensor> = {
        input_ids: { dtype: 'int64', dims: [1, S], data: BigInt64Array.from(ids, BigInt) },
        attention_mask: { dtype: 'int64', dims: [1, S], data: new BigInt64Array(S).fill(1n) },
        position_ids: { dtype: 'int64', dims: [1, S], data: BigInt64Array.from({ length: S }, (_, j) => BigInt(j)) },
      };
      for (let l = 0; l < L; l++) {
        for (const kv of ['key', 'value'])
          feeds[`past_key_values.${l}.${kv}`] = {
            dtype: 'float32',
            dims: [1, nkv, 0, headDim(manifest.config)],
            data: new Float32Array(0),
          };
      }
      const logits = (await session.run(feeds))['logits'];
      if (logits.dtype !== 'float32') throw new Error(`logits are ${logits.dtype}`);
      expect(logits.dims).toEqual([1, S, V]);
      const ref = new ReferenceModel(manifest, (u) => pkg.unitBytes(u));
      const want = ref.forward(ids, ref.newCache());
      let maxDiff = 0;
      for (let i = 0; i < S * V; i++) maxDiff = Math.max(maxDiff, Math.abs(logits.data[i] - want[i]));
      expect(maxDiff).toBeLessThan(1e-4);
    } finally {
      await session.release();
    }
  });
});

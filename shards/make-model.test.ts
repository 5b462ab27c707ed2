import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddingCost, headCost, layerCost } from '../planner/cost-model.ts';
import type { ModelConfig } from '../planner/types.ts';
import { checkpointTensorSpecs, makeConfig, writeModel, type ModelShape } from './make-model.ts';
import { decodeToFloat32, parseSafetensors } from './safetensors.ts';

const root = mkdtempSync(join(tmpdir(), 'tandem-make-model-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('make-model', () => {
  it('is deterministic: the same options give the same bytes, another seed different weights', () => {
    const opts = { preset: 'tiny' as const, overrides: { vocab_size: 512 } };
    writeModel(join(root, 'a'), opts);
    writeModel(join(root, 'b'), opts);
    writeModel(join(root, 'c'), { ...opts, seed: 99 });
    const read = (d: string, f: string) => readFileSync(join(root, d, f));
    for (const f of [
      'model.safetensors',
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]) {
      expect(read('a', f).equals(read('b', f)), f).toBe(true);
    }
    expect(read('a', 'model.safetensors').equals(read('c', 'model.safetensors'))).toBe(false);
  });

  it('writes a Hugging Face folder whose tensors match config.json, with O(1) weights', () => {
    const dir = join(root, 'q2');
    writeModel(dir, { preset: 'tiny', arch: 'qwen2', tied: false, dtype: 'fp32', overrides: { vocab_size: 512 } });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.architectures).toEqual(['Qwen2ForCausalLM']);
    expect(config.tie_word_embeddings).toBe(false);
    const st = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))));
    const names = [...st.header.tensors.keys()];
    expect(names).toContain('lm_head.weight');
    expect(names).toContain('model.layers.3.self_attn.k_proj.bias');
    expect(names.length).toBe(1 + 4 * 12 + 2);
    const q = st.header.tensors.get('model.layers.0.self_attn.q_proj.weight')!;
    expect(q.shape).toEqual([64, 64]);
    const w = decodeToFloat32(q.dtype, st.data(q.name));
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.1);
    expect(std).toBeLessThan(0.15); // 1/sqrt(64) = 0.125
  });

  it('uses the real Qwen3 tokenizer ids and a vocabulary that covers them', () => {
    const config = makeConfig({ preset: 'demo' });
    const tokenizer = JSON.parse(readFileSync(join(root, 'a', 'tokenizer.json'), 'utf8')) as {
      added_tokens: { id: number; content: string }[];
    };
    const maxId = Math.max(...tokenizer.added_tokens.map((t) => t.id));
    expect(config.vocab_size).toBeGreaterThan(maxId);
    const byId = new Map(tokenizer.added_tokens.map((t) => [t.id, t.content]));
    expect(byId.get(config.bos_token_id as number)).toBe('<|endoftext|>');
    expect(byId.get(config.eos_token_id as number)).toBe('<|im_end|>');
    expect(config.num_hidden_layers).toBeGreaterThanOrEqual(16);
    // the demo package (fp32, head stored separately) stays well under 300 MB
    const bytes = checkpointTensorSpecs({ ...config, tie_word_embeddings: false }).reduce(
      (s, t) => s + t.shape.reduce((a, b) => a * b, 1) * 4,
      0,
    );
    expect(bytes).toBeLessThan(250e6);
  });

  it('realistic preset: bytes and FLOPs split between layers and embedding/head like Qwen3-0.6B, and small', () => {
    // Qwen3-0.6B's published config.json shape (28 layers, 0.44 B non-embedding parameters, tied).
    const qwen3_0_6b: ModelShape = {
      num_hidden_layers: 28,
      hidden_size: 1024,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      head_dim: 128,
      intermediate_size: 3072,
      vocab_size: 151936,
      max_position_embeddings: 40960,
    };
    // Parameters counted from the checkpoint's own tensor list (norms included).
    const split = (config: Record<string, unknown>) => {
      let layers = 0,
        other = 0;
      for (const t of checkpointTensorSpecs(config)) {
        const n = t.shape.reduce((a, b) => a * b, 1);
        if (t.name.startsWith('model.layers.')) layers += n;
        else other += n;
      }
      return { layers, total: layers + other };
    };
    const real = split(makeConfig({ preset: 'realistic', overrides: qwen3_0_6b }));
    const small = split(makeConfig({ preset: 'realistic' }));
    expect(real.layers / 1e9).toBeCloseTo(0.44, 2); // the published non-embedding count
    expect(real.layers / real.total).toBeGreaterThan(0.73); // ~3/4
    expect(Math.abs(small.layers / small.total - real.layers / real.total)).toBeLessThan(0.01);
    // FLOPs of a prefill (planner cost model, head over every position): the layers' share matches too.
    const asModel = (m: ModelShape): ModelConfig => ({ ...m, bytesPerParam: 2 });
    const layerShare = (m: ModelConfig, t: number) => {
      const layers = m.num_hidden_layers * layerCost(m, t).flops;
      return layers / (layers + embeddingCost(m, t).flops + headCost(m, t).flops);
    };
    const config = makeConfig({ preset: 'realistic' }) as unknown as ModelShape;
    for (const t of [1, 256, 1024]) {
      expect(Math.abs(layerShare(asModel(config), t) - layerShare(asModel(qwen3_0_6b), t))).toBeLessThan(0.02);
    }
    // Small enough for the lab: under 40 MiB as a bf16 checkpoint.
    expect((2 * small.total) / 2 ** 20).toBeLessThan(40);
    expect(config.vocab_size).toBe(151936); // the real tokenizer's ids
  });
});

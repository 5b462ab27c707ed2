import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointTensorSpecs, makeConfig, writeModel } from './make-model.ts';
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
    for (const f of ['model.safetensors', 'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(read('a', f).equals(read('b', f)), f).toBe(true);
    }
    expect(read('a', 'model.safetensors').equals(read('c', 'model.safetensors'))).toBe(false);
  });

  it('writes a Hugging Face folder whose tensors match config.json, with O(1) weights', () => {
    const dir = join(root, 'q2');
    writeModel(dir, { preset: 'tiny', arch: 'qwen2', tied: false, dtype: 'fp32', overrides: { vocab_size: 512 } });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
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
    const tokenizer = JSON.parse(readFileSync(join(root, 'a', 'tokenizer.json'), 'utf8'));
    const maxId = Math.max(...(tokenizer.added_tokens as { id: number }[]).map((t) => t.id));
    expect(config.vocab_size).toBeGreaterThan(maxId);
    const byId = new Map((tokenizer.added_tokens as { id: number; content: string }[]).map((t) => [t.id, t.content]));
    expect(byId.get(config.bos_token_id as number)).toBe('<|endoftext|>');
    expect(byId.get(config.eos_token_id as number)).toBe('<|im_end|>');
    expect(config.num_hidden_layers).toBeGreaterThanOrEqual(16);
    // the demo package (fp32, head stored separately) stays well under 300 MB
    const bytes = checkpointTensorSpecs({ ...config, tie_word_embeddings: false }).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1) * 4, 0);
    expect(bytes).toBeLessThan(250e6);
  });
});
